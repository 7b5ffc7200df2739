"""The gRPC server: the scopesvc.v1 servicer and its generic handlers, admission limits, TLS,
multi-process workers, and `app`, the process that hosts every front end on one event loop."""
