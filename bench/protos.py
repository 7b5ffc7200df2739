"""Python modules for bench/proto/*.proto, generated once with grpcio-tools into .tools/."""

from __future__ import annotations

import functools
import importlib
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = Path(__file__).resolve().parent / "proto"
OUT = ROOT / ".tools" / "bench-gen"


@functools.cache
def cerbos() -> ModuleType:
    """The wire-compatible subset of Cerbos's CheckResources messages."""
    from grpc_tools import protoc

    source = PROTO_DIR / "cerbos_check.proto"
    target = OUT / "cerbos_check_pb2.py"
    if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
        OUT.mkdir(parents=True, exist_ok=True)
        include = Path(protoc.__file__).parent / "_proto"
        code = protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={OUT}", str(source)])
        if code != 0:
            raise RuntimeError(f"protoc failed on {source}")
    if str(OUT) not in sys.path:
        sys.path.insert(0, str(OUT))
    return importlib.import_module("cerbos_check_pb2")
