"""Fuzz target: the catalog loader (YAML/JSON parsing, validation, compilation).

Any input must give a compiled catalog or a CatalogError; anything else is a crash. When a
catalog does load, a scoped token with no scopes is denied every endpoint but the public ones, a
token holding nothing but unknown scope names is too (it is a token with no scopes), and each
endpoint's own template matches the endpoint.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from scopesvc.catalog import files as catalog_files
    from scopesvc.policy import CatalogError, Engine, Token, TokenFormat


def TestOneInput(data: bytes) -> None:  # noqa: N802 - atheris' name
    source = "fuzz.json" if data[:1] == b"{" else "fuzz.yaml"
    try:
        catalog = catalog_files.load_bytes(data, source)
    except CatalogError:
        return
    engine = Engine(catalog)
    nobody = Token(format=TokenFormat.SCOPED)
    stranger = Token(("not-a-scope-of-this-catalog\x00",), TokenFormat.SCOPED)
    for endpoint in catalog.endpoints[:50]:
        if engine.check(nobody, endpoint.method, endpoint.template).allowed != endpoint.public:
            raise AssertionError(f"a token without scopes was decided wrongly on {endpoint.key}")
        decision = engine.check(stranger, endpoint.method, endpoint.template)
        if decision.allowed != endpoint.public:
            raise AssertionError(f"a token with only unknown scopes was decided wrongly on {endpoint.key}")
        if decision.endpoint is None or decision.endpoint.template.count("/") != endpoint.template.count("/"):
            raise AssertionError(f"{endpoint.key} does not match itself")


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
