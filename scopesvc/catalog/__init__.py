"""Catalog files: reading and validating catalog documents (`files`) and the catalogs shipped
inside the package (`builtin/`). The policy core compiles what this package reads."""
