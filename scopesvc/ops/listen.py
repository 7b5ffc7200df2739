"""Listening sockets that are the process's own: a port another process holds is an error, never shared.

Linux lets processes that all set SO_REUSEPORT share a port (the kernel spreads connections over
them); gRPC sets it by default. A second `scopesvc serve` on a port in use must fail at start
instead, naming the port; `ListenError`'s message is the one line `scopesvc serve` prints.
"""

from __future__ import annotations

import socket


class ListenError(OSError):
    """A listener cannot be opened; the message names it, its address and why."""


def bind_tcp(name: str, host: str, port: int) -> socket.socket:
    """A bound, non-blocking TCP socket on host:port, exclusively (no SO_REUSEPORT): a port another
    process holds is an error naming `name` and the address, never a port shared by accident."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, proto, _, where = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                           flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {address} ({name}): {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart despite TIME_WAIT; still exclusive
        sock.bind(where)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {address} ({name}): {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock
