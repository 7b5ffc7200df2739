"""Small helpers shared by the tests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from google.rpc import error_details_pb2
from grpc_status import rpc_status

from scopesvc.v1 import scopesvc_pb2 as pb

LEGACY_TIME = 1_700_000_000  # 2023-11-14, before the 2026-03-03 cut-over
SCOPED_TIME = 1_790_000_000  # 2026-09-21, after it


def concrete(template: str, value: str = "AbC-123_x") -> str:
    """A concrete request path for an endpoint template, as a gateway would see it."""
    return re.sub(r"\{[^}]+\}", value, template)


def token(*scopes: str, fmt: int = pb.TOKEN_FORMAT_UNSPECIFIED, issued: int | None = None, kind: int = 0) -> pb.Token:
    message = pb.Token(scopes=scopes, format=fmt, kind=kind)  # type: ignore[arg-type]
    if issued is not None:
        message.issued_at.seconds = issued
    return message


def bad_request_field(error) -> str:  # type: ignore[no-untyped-def]
    """The field named by the google.rpc.BadRequest detail of an INVALID_ARGUMENT error."""
    status = rpc_status.from_call(error)
    assert status is not None, "no rich status details"
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            info = error_details_pb2.BadRequest()
            detail.Unpack(info)
            return info.field_violations[0].field
    raise AssertionError("no BadRequest detail")


def decision_records(log: Path) -> list[dict[str, Any]]:
    """The decision log's whole lines so far: its writer thread can be caught mid-line, and a missing file is empty."""
    text = log.read_text(encoding="utf-8") if log.exists() else ""
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]
