"""scopesvc: OAuth scope authorization decisions.

The policy lives in `scopesvc.policy` (pure, no I/O); `scopesvc.catalog_files` reads catalogs,
`scopesvc.service` and `scopesvc.server` serve the `scopesvc.v1` gRPC API, `scopesvc.cli` is
the command line.
"""

__version__ = "0.1.0"
