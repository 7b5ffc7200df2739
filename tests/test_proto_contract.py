"""The public contract: names outside clients rely on, and every field documented."""

from __future__ import annotations

import re

from scopesvc.policy import Reason
from scopesvc.v1 import scopesvc_pb2 as pb

from .conftest import ROOT

PROTO = ROOT / "proto" / "scopesvc" / "v1" / "scopesvc.proto"


def fields(message) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {f.name: f.message_type.full_name if f.message_type else f.enum_type.full_name if f.enum_type else f.type
            for f in message.DESCRIPTOR.fields}


def test_package_and_rpcs():
    service = pb.DESCRIPTOR.services_by_name["ScopeService"]
    assert service.full_name == "scopesvc.v1.ScopeService"
    methods = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in service.methods}
    assert methods["Check"] == ("scopesvc.v1.CheckRequest", "scopesvc.v1.CheckResponse")
    assert methods["Plan"] == ("scopesvc.v1.PlanRequest", "scopesvc.v1.PlanResponse")
    assert methods["MigrateToken"] == ("scopesvc.v1.Token", "scopesvc.v1.Token")
    assert {"CheckBatch", "CheckWebhookSubscription", "CheckWebhookDelivery", "Diagnose", "GetCatalog"} <= set(methods)


def test_message_fields_clients_rely_on():
    assert {"token": "scopesvc.v1.Token"}.items() <= fields(pb.CheckRequest).items()
    assert {"method", "path"} <= set(fields(pb.CheckRequest))
    token = fields(pb.Token)
    assert token["format"] == "scopesvc.v1.TokenFormat" and token["issued_at"] == "google.protobuf.Timestamp"
    assert "scopes" in token
    assert {"allowed", "missing_scopes", "endpoint"} <= set(fields(pb.CheckResponse))
    assert {"features", "client_id", "redirect_uri"} <= set(fields(pb.PlanRequest))
    assert {"scopes", "optional_scopes", "authorize_url"} <= set(fields(pb.PlanResponse))
    assert [v.name for v in pb.TokenFormat.DESCRIPTOR.values] == [
        "TOKEN_FORMAT_UNSPECIFIED", "TOKEN_FORMAT_SCOPED", "TOKEN_FORMAT_LEGACY"]


def test_every_field_and_value_is_documented():
    undocumented = []
    previous = ""
    for number, line in enumerate(PROTO.read_text().splitlines(), 1):
        if re.match(r"^  (rpc |[A-Za-z].* = \d+;)", line) and not previous.strip().startswith("//"):
            undocumented.append(f"{number}: {line.strip()}")
        previous = line
    assert not undocumented, "\n".join(undocumented)


def test_policy_reasons_are_the_proto_reasons():
    """The engine's Reason converts by value (convert.py), so each member must be the proto's own number."""
    proto = {v.name: v.number for v in pb.Reason.DESCRIPTOR.values}
    assert {f"REASON_{r.name}": int(r) for r in Reason} == proto
    assert proto["REASON_ROUTE_METHOD_MISMATCH"] == 10 and proto["REASON_REWRITE_HEADER"] == 13
