"""Bad input through the scopesvc.v1 gRPC API: each gets a clear error or a deny with a reason.

None may allow, and none may hurt the server: every test ends by checking that the server still
answers a plain request correctly. Invalid UTF-8 and corrupt wire bytes are sent raw, through a
generic channel call with a hand-serialized message, since the Python stubs would refuse to
build them.
"""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scopesvc.v1 import scopesvc_pb2 as pb

from .helpers import LEGACY_TIME, bad_request_field, token

ALL_SCOPES = (
    "availability:write", "event_types:write", "locations:read", "routing_forms:read", "shares:write",
    "scheduled_events:write", "scheduling_links:write", "groups:read", "organizations:write", "users:read",
    "webhooks:write", "activity_log:read", "data_compliance:write", "outgoing_communications:read",
)  # fmt: skip


@pytest.fixture(autouse=True)
def server_still_answers(channel, stub):
    """After each bad input, the server is healthy and still decides correctly."""
    yield
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
    assert stub.Check(pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me"), timeout=5).allowed
    denied = stub.Check(pb.CheckRequest(token=token("users:read"), method="GET", path="/organizations/x"), timeout=5)
    assert not denied.allowed and denied.missing_scopes == ["organizations:read"]


def powerful_tokens() -> list[pb.Token]:
    """A token with every scope, and a legacy token (full access): neither may pass a confused path."""
    return [token(*ALL_SCOPES, fmt=pb.TOKEN_FORMAT_SCOPED), token(issued=LEGACY_TIME), token(fmt=pb.TOKEN_FORMAT_LEGACY)]


def test_the_powerful_tokens_do_pass_a_plain_path(stub):
    for tok in powerful_tokens():
        assert stub.Check(pb.CheckRequest(token=tok, method="GET", path="/scheduled_events/AB12")).allowed


CONFUSED = [
    # dot segments, plain and encoded, in every spelling
    "/users/me/../../organizations/x", "/users/./me", "/organizations/x/..", "/./users/me", "/users/me/.",
    "/users/%2e%2e/organizations/x", "/users/%2E%2E/organizations/x", "/users/.%2e/x", "/users/%2e./x",
    "/users/%2e/me", "/users/%252e%252e/x",
    # encoded slashes and backslashes, double encoding
    "/users%2Fme", "/users%2fme", "/scheduled_events/a%2F..%2Fb", "/users/me%5C..%5Cx", "/users%5cme",
    "/users/%252F", "/users/%25", "/users/%25%32%65", "/users\\me", "\\users\\me", "/users/me\\",
    # ';' parameters, fragments, absolute and other forms
    "/users;x=1/me", "/users/me;jsessionid=1", "/users/me;", "/users/me#x", "/users/me#/../x",
    "https://api.calendly.com/users/me", "http://evil/users/me", "//evil/users/me", "*", "users/me", "?/users/me",
    # empty segments, bad or overlong percent-encoding, control characters, unicode
    "/users//me", "//users/me", "/users/me//", "/users/%", "/users/%4", "/users/%zz", "/users/%ff", "/users/%C0%AE",
    "/users/%c0%af", "/users/%00", "/users/me%00", "/users/me\x00", "/users/me\r\nX-Header: 1", "/users/m e",
    "/users/me\t", "/users/%0d%0a", "/users/\x7f", "/users/\u202eem", "/users/m\u00e9",
    "/" + "a/" * 5000, "/users/" + "x" * 9000,
]  # fmt: skip


@pytest.mark.parametrize("path", CONFUSED)
def test_confused_paths_are_denied_even_for_full_access(stub, path):
    for tok in powerful_tokens():
        response = stub.Check(pb.CheckRequest(token=tok, method="GET", path=path))
        assert not response.allowed, path
        assert response.reason in (pb.REASON_MALFORMED_PATH, pb.REASON_UNKNOWN_ENDPOINT), path
        assert response.message and response.deny.http_status in (400, 403)


@pytest.mark.parametrize("method", ["get", "Get", "gEt", "GET ", " GET", "GET\x00", "G\u0130T", "CONNECT", "TRACE",
                                    "OPTIONS", "PROPFIND", "*", "-", "\x00"])
def test_odd_methods_are_denied_even_for_full_access(stub, method):
    for tok in powerful_tokens():
        response = stub.Check(pb.CheckRequest(token=tok, method=method, path="/users/me"))
        assert not response.allowed and response.reason == pb.REASON_UNKNOWN_ENDPOINT, method


def test_query_tricks_do_not_change_the_endpoint(stub):
    # The query is ignored for matching, so tricks in it neither widen nor narrow the decision.
    for path in ("/users/me?x=/../organizations/x", "/users/me?%2F..%2F", "/users/me?#frag"):
        response = stub.Check(pb.CheckRequest(token=token("users:read"), method="GET", path=path))
        assert response.allowed and response.endpoint == "GET /users/me"


@pytest.mark.parametrize(
    "scopes",
    [
        ["users:read\x00"], ["users:read "], [" users:read"], ["USERS:READ"], ["users:*"], ["*"], ["users"],
        ["users:read,organizations:read"], ["users:read organizations:read"], ["organizations:read\u200b"],
        ["organizations:rea\u0501"], [""], ["" for _ in range(1000)], ["x" * 1024], [f"s{i}" for i in range(1000)],
    ],
)
def test_lookalike_and_junk_scopes_grant_nothing(stub, scopes):
    response = stub.Check(pb.CheckRequest(token=token(*scopes), method="GET", path="/organizations/x"))
    # Only names the catalog does not know: a token with no scopes, however many strings it carries.
    assert not response.allowed and response.reason == pb.REASON_NO_SCOPES
    assert set(response.unknown_scopes) == set(scopes)


def test_a_thousand_scopes_is_accepted_and_one_more_is_refused(stub):
    scopes = [f"junk{i}" for i in range(999)] + ["organizations:read"]
    assert stub.Check(pb.CheckRequest(token=token(*scopes), method="GET", path="/organizations/x")).allowed
    with pytest.raises(grpc.RpcError) as info:
        stub.Check(pb.CheckRequest(token=token(*scopes, "one-more"), method="GET", path="/organizations/x"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_request_field(info.value) == "token.scopes"


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(10**15, 0), (-(10**15), 0), (253402300800, 0), (-62135596801, 0), (0, -1), (0, 10**9), (LEGACY_TIME, -5),
     (2**63 - 1, 0), (-(2**63), 0), (0, 2**31 - 1)],
)
def test_out_of_range_timestamps_are_invalid_argument(stub, seconds, nanos):
    bad = token("users:read")
    bad.issued_at.seconds, bad.issued_at.nanos = seconds, nanos
    for call, request in ((stub.Check, pb.CheckRequest(token=bad, method="GET", path="/organizations/x")),
                          (stub.MigrateToken, bad),
                          (stub.CheckWebhookDelivery, pb.WebhookDeliveryRequest(token=bad, event="invitee.created"))):
        with pytest.raises(grpc.RpcError) as info:
            call(request)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_field(info.value).endswith("issued_at")


@pytest.mark.parametrize("fmt", [3, 99, -1, 2**31 - 1, -(2**31)])
def test_unknown_token_formats_are_denied(stub, fmt):
    response = stub.Check(pb.CheckRequest(token=pb.Token(scopes=ALL_SCOPES, format=fmt), method="GET", path="/users/me"))
    assert not response.allowed and response.reason == pb.REASON_UNKNOWN_TOKEN_FORMAT
    assert response.deny.http_status == 401


def test_unknown_token_kind_grants_nothing_more(stub):
    response = stub.Check(pb.CheckRequest(token=pb.Token(scopes=["users:read"], kind=99), method="GET",
                                          path="/organizations/x"))
    assert not response.allowed


# -- raw wire bytes -----------------------------------------------------------------------


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (tag, varint length, bytes), written by hand."""
    tag = (number << 3) | 2
    length = len(payload)
    varint = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        varint.append(byte | (0x80 if length else 0))
        if not length:
            break
    return bytes([tag]) + bytes(varint) + payload


def _check_bytes(path: bytes, method: bytes = b"GET", scopes: tuple[bytes, ...] = (b"users:read",)) -> bytes:
    tok = b"".join(_field(1, s) for s in scopes)
    return _field(1, tok) + _field(2, method) + _field(3, path)


@pytest.fixture
def raw_check(channel):
    return channel.unary_unary("/scopesvc.v1.ScopeService/Check", request_serializer=None,
                               response_deserializer=pb.CheckResponse.FromString)


def test_hand_serialized_request_is_understood(raw_check):
    assert raw_check(_check_bytes(b"/users/me"), timeout=5).allowed  # the encoder below is right


@pytest.mark.parametrize(
    "body",
    [
        _check_bytes(b"/users/\xff"), _check_bytes(b"/users/me\xc0\xae"), _check_bytes(b"/users/me", b"G\xffT"),
        _check_bytes(b"/organizations/x", scopes=(b"organizations:read\xff",)),
        _check_bytes(b"/users/\xed\xa0\x80"),  # an encoded UTF-16 surrogate
        _check_bytes(b"/users/me")[:-3],  # truncated
        b"\xff" * 32, b"\x0a\xff\xff\xff\xff\x0f",  # corrupt, and a length far past the end
    ],
)
def test_invalid_utf8_and_corrupt_wire_bytes_are_refused(raw_check, body):
    with pytest.raises(grpc.RpcError) as info:
        raw_check(body, timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value
    assert bad_request_field(info.value) == "request"
    assert "cannot parse the request message" in info.value.details()


def test_unknown_fields_are_ignored_not_trusted(raw_check):
    # Field 15 is no field of CheckRequest; it must neither break the request nor change it.
    extra = _field(15, b"allowed") + bytes([0x20, 0x01])  # and a stray varint field 4
    response = raw_check(_check_bytes(b"/organizations/x") + extra, timeout=5)
    assert not response.allowed and response.missing_scopes == ["organizations:read"]


# -- empty and huge fields, every RPC ----------------------------------------------------


def test_message_over_the_size_limit_is_resource_exhausted(stub):
    with pytest.raises(grpc.RpcError) as info:
        stub.Check(pb.CheckRequest(token=pb.Token(), method="GET", path="/" + "a" * (5 * 1024 * 1024)))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_long_path_below_the_message_limit_is_a_malformed_deny(stub):
    response = stub.Check(pb.CheckRequest(token=token(fmt=pb.TOKEN_FORMAT_LEGACY), method="GET",
                                          path="/users/" + "a" * 1_000_000))
    assert not response.allowed and response.reason == pb.REASON_MALFORMED_PATH
    assert len(response.message) < 1000, "the message does not echo a huge path back"


def test_huge_batch_is_refused(stub):
    one = pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me")
    with pytest.raises(grpc.RpcError) as info:
        stub.CheckBatch(pb.CheckBatchRequest(checks=[one] * 1001))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    results = stub.CheckBatch(pb.CheckBatchRequest(checks=[one] * 1000)).results
    assert len(results) == 1000 and all(r.allowed for r in results)


def test_batch_of_confused_paths_allows_none(stub):
    checks = [pb.CheckRequest(token=token(fmt=pb.TOKEN_FORMAT_LEGACY), method="GET", path=p) for p in CONFUSED]
    assert not any(r.allowed for r in stub.CheckBatch(pb.CheckBatchRequest(checks=checks)).results)


@pytest.mark.parametrize(
    ("call", "request_", "field"),
    [
        ("Plan", pb.PlanRequest(), "features"),
        ("Plan", pb.PlanRequest(features=["x"] * 1001), "features"),
        ("Plan", pb.PlanRequest(features=["a" * 9000]), "features[0]"),
        ("Plan", pb.PlanRequest(features=["GET /users/../x"]), "features[0]"),
        ("Plan", pb.PlanRequest(features=["\x00"]), "features[0]"),
        ("Plan", pb.PlanRequest(features=["GET /users/me"], existing_scopes=["s"] * 1001), "existing_scopes"),
        ("Plan", pb.PlanRequest(features=["GET /users/me"], client_id="c", redirect_uri="javascript:alert(1)"),
         "redirect_uri"),
        ("Plan", pb.PlanRequest(features=["GET /users/me"], client_id="c", redirect_uri="https://a/#f"), "redirect_uri"),
        ("Plan", pb.PlanRequest(features=["GET /users/me"], redirect_uri="https://a/"), "client_id"),
        ("CheckWebhookSubscription", pb.WebhookSubscriptionRequest(events=["invitee.created"], subscription_scope=1),
         "token"),
        ("CheckWebhookSubscription", pb.WebhookSubscriptionRequest(token=token(), subscription_scope=1), "events"),
        ("CheckWebhookSubscription", pb.WebhookSubscriptionRequest(token=token(), events=["invitee.created"]),
         "subscription_scope"),
        ("CheckWebhookSubscription",
         pb.WebhookSubscriptionRequest(token=token(), events=["invitee.created"], subscription_scope=99),
         "subscription_scope"),
        ("CheckWebhookSubscription",
         pb.WebhookSubscriptionRequest(token=token(), events=["e"] * 1001, subscription_scope=1), "events"),
        ("CheckWebhookDelivery", pb.WebhookDeliveryRequest(event="invitee.created"), "token"),
        ("CheckWebhookDelivery", pb.WebhookDeliveryRequest(token=token()), "event"),
        ("Diagnose", pb.DiagnoseRequest(), "target"),
        ("Diagnose", pb.DiagnoseRequest(method="GET", path="/users/%2e%2e"), "path"),
        ("Diagnose", pb.DiagnoseRequest(method="GET", path="/nowhere"), "path"),
        ("Diagnose", pb.DiagnoseRequest(event="nope"), "event"),
        ("Diagnose", pb.DiagnoseRequest(event="invitee.created", method="GET", path="/users/me"), "event"),
        ("Diagnose", pb.DiagnoseRequest(method="GET", path="/users/me", granted_scopes=["s"] * 1001), "granted_scopes"),
        ("MigrateToken", pb.Token(format=42), "format"),
        ("MigrateToken", pb.Token(scopes=["s"] * 1001), "scopes"),
    ],
)
def test_other_rpcs_refuse_bad_input_with_the_field(stub, call, request_, field):
    with pytest.raises(grpc.RpcError) as info:
        getattr(stub, call)(request_)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert bad_request_field(info.value).endswith(field)


@pytest.mark.parametrize("event", ["", "INVITEE.CREATED", "invitee.created\x00", "invitee.created ", "*", "a" * 9000])
def test_webhook_lookalike_events_are_not_delivered(stub, event):
    tok = token(*ALL_SCOPES, fmt=pb.TOKEN_FORMAT_SCOPED)
    try:
        decision = stub.CheckWebhookDelivery(pb.WebhookDeliveryRequest(token=tok, event=event))
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
        return
    assert not decision.allowed and decision.reason == pb.REASON_UNKNOWN_EVENT
    request = pb.WebhookSubscriptionRequest(token=tok, events=[event or "x"], subscription_scope=2)
    try:
        assert not stub.CheckWebhookSubscription(request).allowed
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
