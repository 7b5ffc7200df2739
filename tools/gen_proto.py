"""Generate the Python stubs in scopesvc/v1 from proto/scopesvc/v1/scopesvc.proto.

    python tools/gen_proto.py          # regenerate
    python tools/gen_proto.py --check  # exit 1 when the committed stubs are stale (CI)
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO = Path("scopesvc/v1/scopesvc.proto")
OUTPUTS = ("scopesvc_pb2.py", "scopesvc_pb2.pyi", "scopesvc_pb2_grpc.py")


def generate(out: Path) -> None:
    include = str(resources.files("grpc_tools") / "_proto")
    args = [
        "protoc",
        f"-I{ROOT / 'proto'}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        str(ROOT / "proto" / PROTO),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed stubs are stale")
    check = parser.parse_args().check
    target = ROOT / PROTO.parent
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = Path(tmp) / PROTO.parent
        stale = [n for n in OUTPUTS if not (target / n).exists() or not filecmp.cmp(fresh / n, target / n, shallow=False)]
        if check:
            if stale:
                print(f"stale generated stubs: {', '.join(stale)}; run: python tools/gen_proto.py", file=sys.stderr)
                return 1
            print("generated stubs are up to date")
            return 0
        for name in OUTPUTS:
            shutil.copyfile(fresh / name, target / name)
    print(f"generated {', '.join(OUTPUTS)} in {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
