"""scopesvc: OAuth scope authorization decisions.

The policy lives in `scopesvc.policy` (pure, no I/O); `scopesvc.catalog.files` reads catalogs,
`scopesvc.server.service` and `scopesvc.server.app` serve the `scopesvc.v1` gRPC API, `scopesvc.cli` is
the command line.
"""

__version__ = "0.1.0"
