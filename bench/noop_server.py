"""The ceiling: a grpcio (asyncio) server that answers scopesvc.v1 Check without deciding anything.

It parses the CheckRequest (any real service must) and returns one prebuilt CheckResponse of the
size scopesvc's answers have, so the difference to scopesvc is the decision and its conversion.

    python -m bench.noop_server PORT RESPONSE_SIZE [--interceptor]

With `--interceptor` each RPC also passes through an asyncio server interceptor that wraps the
handler (as a metrics interceptor must) but records nothing: the cost of that shape alone.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import grpc

from scopesvc.v1 import scopesvc_pb2 as pb



def response_of_size(size: int) -> pb.CheckResponse:
    """A CheckResponse whose serialized form is exactly `size` bytes (size >= 8)."""
    response = pb.CheckResponse(allowed=True, reason=pb.REASON_ALLOWED)
    base = len(response.SerializeToString())
    response.message = "x" * max(0, size - base - 2)
    while len(response.SerializeToString()) > size:
        response.message = response.message[:-1]
    return response


class PassThrough(grpc.aio.ServerInterceptor):
    """Wraps every unary handler in a new one that just awaits the original."""

    async def intercept_service(self, continuation, details):  # type: ignore[no-untyped-def]
        handler = await continuation(details)
        if handler is None or not handler.unary_unary:
            return handler
        behavior = handler.unary_unary

        async def wrapped(request, context):  # type: ignore[no-untyped-def]
            return await behavior(request, context)

        return grpc.unary_unary_rpc_method_handler(wrapped, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)


async def serve(port: int, size: int, interceptor: bool) -> None:
    answer = response_of_size(size)

    async def check(request: pb.CheckRequest, context: grpc.aio.ServicerContext) -> pb.CheckResponse:
        return answer

    handler = grpc.method_handlers_generic_handler("scopesvc.v1.ScopeService", {
        "Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=pb.CheckRequest.FromString,
            response_serializer=pb.CheckResponse.SerializeToString),
    })
    server = grpc.aio.server(interceptors=[PassThrough()] if interceptor else None)
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2]), "--interceptor" in sys.argv[3:]))
