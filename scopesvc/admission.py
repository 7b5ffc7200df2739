"""Admission control: refuse unary RPCs beyond a limit with RESOURCE_EXHAUSTED instead of queueing them.

grpc.aio's own `maximum_concurrent_rpcs` does not refuse anything: it stops taking new calls
from the transport, so the excess waits unseen and every caller's latency grows with the
backlog. Here each unary RPC is counted from the moment it is admitted until it finishes, and
yields once before running, so calls that arrive while others are being served are counted
too; one beyond the limit is answered at once and can go to another replica. Streaming RPCs
(health Watch, reflection) are not counted: they last as long as their client keeps them.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import grpc


class AdmissionLimit(grpc.aio.ServerInterceptor):
    """At most `limit` unary RPCs admitted at once; the rest get RESOURCE_EXHAUSTED."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler
        inner = handler.unary_unary

        async def admitted(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if self.active >= self.limit:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    f"server busy: {self.limit} RPCs in progress (--max-concurrent-rpcs); retry")
            self.active += 1
            try:
                await asyncio.sleep(0)  # let calls that arrived meanwhile reach the count
                result = inner(request, context)
                return await result if inspect.isawaitable(result) else result
            finally:
                self.active -= 1

        return grpc.unary_unary_rpc_method_handler(admitted, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)
