"""The ceiling: a grpcio (asyncio) server that answers scopesvc.v1 Check without deciding anything.

It parses the CheckRequest (any real service must) and returns one prebuilt CheckResponse of the
size scopesvc's answers have, so the difference to scopesvc is the decision and its conversion;
Envoy's ext_authz Authorization/Check gets an OK to every request the same way.
With WORK_US it first keeps the event loop busy that many microseconds per call: what a handler's
own time costs in throughput, to set beside scopesvc's handler time.

    python -m bench.noop_server PORT RESPONSE_SIZE [WORK_US]
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import grpc
from envoy.service.auth.v3 import external_auth_pb2 as authz
from google.rpc import code_pb2, status_pb2

from scopesvc.v1 import scopesvc_pb2 as pb

# Envoy's ext_authz asks Authorization/Check: the same no-op, answering OK (bench/export.py).
_AUTHZ_OK = authz.CheckResponse(status=status_pb2.Status(code=code_pb2.OK), ok_response=authz.OkHttpResponse())


def response_of_size(size: int) -> pb.CheckResponse:
    """A CheckResponse whose serialized form is exactly `size` bytes (size >= 8)."""
    response = pb.CheckResponse(allowed=True, reason=pb.REASON_ALLOWED)
    base = len(response.SerializeToString())
    response.message = "x" * max(0, size - base - 2)
    while len(response.SerializeToString()) > size:
        response.message = response.message[:-1]
    return response


async def serve(port: int, size: int, work_us: float = 0.0) -> None:
    answer = response_of_size(size)
    clock, work_ns = time.perf_counter_ns, int(work_us * 1000)

    async def check(request: pb.CheckRequest, context: grpc.aio.ServicerContext) -> pb.CheckResponse:
        return answer

    async def check_after_work(request: pb.CheckRequest, context: grpc.aio.ServicerContext) -> pb.CheckResponse:
        end = clock() + work_ns
        while clock() < end:
            pass
        return answer

    handler = grpc.method_handlers_generic_handler("scopesvc.v1.ScopeService", {
        "Check": grpc.unary_unary_rpc_method_handler(
            check_after_work if work_ns else check, request_deserializer=pb.CheckRequest.FromString,
            response_serializer=pb.CheckResponse.SerializeToString),
    })
    async def authorize(request: authz.CheckRequest, context: grpc.aio.ServicerContext) -> authz.CheckResponse:
        return _AUTHZ_OK

    ext_authz = grpc.method_handlers_generic_handler("envoy.service.auth.v3.Authorization", {
        "Check": grpc.unary_unary_rpc_method_handler(
            authorize, request_deserializer=authz.CheckRequest.FromString,
            response_serializer=authz.CheckResponse.SerializeToString),
    })
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler, ext_authz))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0))
