"""Admission control: refuse RPCs beyond a limit with RESOURCE_EXHAUSTED instead of queueing them.

The limit counts every call the server holds - being served *or still waiting in gRPC's
transport*. grpc.aio takes calls from the transport one at a time, so under a burst the
backlog builds up there, out of Python's sight: counting only the calls being served (as
grpc.aio's own `maximum_concurrent_rpcs` does, which also just stops taking calls) lets it
grow without bound, and every caller waits behind it. gRPC core does count the calls it has
started and finished; channelz reports them (`calls_started - calls_succeeded -
calls_failed`). That figure is read at most every `interval` seconds and kept current in
between with the calls finished here since, so the check per call costs a few attribute reads.

Calls beyond the limit are answered with RESOURCE_EXHAUSTED as soon as they reach a handler,
which clients and gateways may retry on another replica; no work is done for them, though in
grpc.aio a refusal still costs nearly what a cheap call does (docs/hardening.md has figures).
Long-lived streams (health Watch) are not calls in progress: they are subtracted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
from grpc_channelz.v1 import channelz_pb2
from grpc_channelz.v1.channelz import ChannelzServicer

# Bounds the staleness of the transport's count, and its cost: one channelz read (~0.2 ms)
# per interval while calls arrive, nothing when idle.
SAMPLE_INTERVAL = 0.01


def _channelz_servers() -> dict[int, int]:
    """{server id: number of listening sockets} for every gRPC server of this process."""
    servers: dict[int, int] = {}
    start = 0
    while True:
        page = ChannelzServicer.GetServers(channelz_pb2.GetServersRequest(start_server_id=start), None)
        servers.update((server.ref.server_id, len(server.listen_socket)) for server in page.server)
        if page.end or not page.server:
            return servers
        start = max(servers) + 1


def create_server(create: Callable[[], grpc.aio.Server]) -> tuple[grpc.aio.Server, int]:
    """Create a gRPC server with `create()` and return it with its channelz id.

    Ids are not given in creation order, so the new server is the one that was not there
    before and has no listener yet; anything else (another thread creating a server at the
    same moment) is refused rather than guessed.
    """
    before = _channelz_servers()
    server = create()
    new = [sid for sid, listeners in _channelz_servers().items() if sid not in before and listeners == 0]
    if len(new) != 1:
        raise RuntimeError(f"cannot tell this gRPC server apart in channelz: new server ids {new}")
    return server, new[0]


def channelz_outstanding(server_id: int) -> Callable[[], int]:
    """A function giving the calls gRPC core has started and not finished on server `server_id`."""
    request = channelz_pb2.GetServerRequest(server_id=server_id)

    def outstanding() -> int:
        data = ChannelzServicer.GetServer(request, None).server.data
        return data.calls_started - data.calls_succeeded - data.calls_failed

    return outstanding


class Admission:
    """At most `limit` calls held at once (served or queued); beyond it, RESOURCE_EXHAUSTED."""

    def __init__(self, limit: int, outstanding: Callable[[], int], interval: float = SAMPLE_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.active = 0  # admitted and not yet finished
        self.streams = 0  # long-lived streams open (counted by gRPC core, not calls in progress)
        self._outstanding = outstanding
        self._interval = interval
        self._clock = clock
        self._finished = 0  # calls terminated (served or refused), ever
        self._sampled_at = float("-inf")
        self._sampled = 0  # gRPC core's outstanding calls at the last sample...
        self._finished_at_sample = 0  # ...and `_finished` then

    def held(self) -> int:
        """Calls the server holds now, this one included: the transport's count, kept current."""
        now = self._clock()
        if now - self._sampled_at >= self._interval:
            self._sampled_at = now
            self._sampled = self._outstanding()
            self._finished_at_sample = self._finished
        queued = self._sampled - (self._finished - self._finished_at_sample) - self.streams
        return max(queued, self.active + 1)

    def admit(self) -> bool:
        """Take a call in (True) or refuse it (False); an admitted call must be `release`d."""
        if self.held() > self.limit:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        """An admitted call's handler has finished."""
        self.active -= 1

    def done(self, _context: object = None) -> None:
        """A call has terminated (served or refused; the RPC's done callback).

        Counted when gRPC is done with the call, not when its handler returns, so it follows
        gRPC core's own count instead of running ahead of it: a refusal still being sent must
        not count twice, or at a small limit every call would keep being refused.
        """
        self._finished += 1

    def refusal(self) -> str:
        return f"server busy: more than {self.limit} calls held (--max-concurrent-rpcs); retry"

