import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TokenFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOKEN_FORMAT_UNSPECIFIED: _ClassVar[TokenFormat]
    TOKEN_FORMAT_SCOPED: _ClassVar[TokenFormat]
    TOKEN_FORMAT_LEGACY: _ClassVar[TokenFormat]

class TokenKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOKEN_KIND_UNSPECIFIED: _ClassVar[TokenKind]
    TOKEN_KIND_OAUTH_APP: _ClassVar[TokenKind]
    TOKEN_KIND_PERSONAL_ACCESS_TOKEN: _ClassVar[TokenKind]

class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_UNSPECIFIED: _ClassVar[Reason]
    REASON_ALLOWED: _ClassVar[Reason]
    REASON_ALLOWED_LEGACY_TOKEN: _ClassVar[Reason]
    REASON_INSUFFICIENT_SCOPE: _ClassVar[Reason]
    REASON_NO_SCOPES: _ClassVar[Reason]
    REASON_UNKNOWN_ENDPOINT: _ClassVar[Reason]
    REASON_MALFORMED_PATH: _ClassVar[Reason]
    REASON_UNKNOWN_TOKEN_FORMAT: _ClassVar[Reason]
    REASON_UNKNOWN_EVENT: _ClassVar[Reason]
    REASON_SUBSCRIPTION_SCOPE_NOT_ALLOWED: _ClassVar[Reason]
    REASON_ROUTE_METHOD_MISMATCH: _ClassVar[Reason]
    REASON_MISSING_TOKEN: _ClassVar[Reason]
    REASON_INVALID_TOKEN: _ClassVar[Reason]
    REASON_REWRITE_HEADER: _ClassVar[Reason]
    REASON_ALLOWED_PUBLIC: _ClassVar[Reason]

class SubscriptionScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUBSCRIPTION_SCOPE_UNSPECIFIED: _ClassVar[SubscriptionScope]
    SUBSCRIPTION_SCOPE_ORGANIZATION: _ClassVar[SubscriptionScope]
    SUBSCRIPTION_SCOPE_USER: _ClassVar[SubscriptionScope]
    SUBSCRIPTION_SCOPE_GROUP: _ClassVar[SubscriptionScope]

class Cause(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAUSE_UNSPECIFIED: _ClassVar[Cause]
    CAUSE_NOT_REQUESTED: _ClassVar[Cause]
    CAUSE_DECLINED: _ClassVar[Cause]
TOKEN_FORMAT_UNSPECIFIED: TokenFormat
TOKEN_FORMAT_SCOPED: TokenFormat
TOKEN_FORMAT_LEGACY: TokenFormat
TOKEN_KIND_UNSPECIFIED: TokenKind
TOKEN_KIND_OAUTH_APP: TokenKind
TOKEN_KIND_PERSONAL_ACCESS_TOKEN: TokenKind
REASON_UNSPECIFIED: Reason
REASON_ALLOWED: Reason
REASON_ALLOWED_LEGACY_TOKEN: Reason
REASON_INSUFFICIENT_SCOPE: Reason
REASON_NO_SCOPES: Reason
REASON_UNKNOWN_ENDPOINT: Reason
REASON_MALFORMED_PATH: Reason
REASON_UNKNOWN_TOKEN_FORMAT: Reason
REASON_UNKNOWN_EVENT: Reason
REASON_SUBSCRIPTION_SCOPE_NOT_ALLOWED: Reason
REASON_ROUTE_METHOD_MISMATCH: Reason
REASON_MISSING_TOKEN: Reason
REASON_INVALID_TOKEN: Reason
REASON_REWRITE_HEADER: Reason
REASON_ALLOWED_PUBLIC: Reason
SUBSCRIPTION_SCOPE_UNSPECIFIED: SubscriptionScope
SUBSCRIPTION_SCOPE_ORGANIZATION: SubscriptionScope
SUBSCRIPTION_SCOPE_USER: SubscriptionScope
SUBSCRIPTION_SCOPE_GROUP: SubscriptionScope
CAUSE_UNSPECIFIED: Cause
CAUSE_NOT_REQUESTED: Cause
CAUSE_DECLINED: Cause

class Token(_message.Message):
    __slots__ = ("scopes", "format", "issued_at", "kind")
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    scopes: _containers.RepeatedScalarFieldContainer[str]
    format: TokenFormat
    issued_at: _timestamp_pb2.Timestamp
    kind: TokenKind
    def __init__(self, scopes: _Optional[_Iterable[str]] = ..., format: _Optional[_Union[TokenFormat, str]] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[TokenKind, str]] = ...) -> None: ...

class ScopeSet(_message.Message):
    __slots__ = ("scopes",)
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    scopes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, scopes: _Optional[_Iterable[str]] = ...) -> None: ...

class CheckRequest(_message.Message):
    __slots__ = ("token", "method", "path", "bearer_token")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    BEARER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: Token
    method: str
    path: str
    bearer_token: str
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ..., method: _Optional[str] = ..., path: _Optional[str] = ..., bearer_token: _Optional[str] = ...) -> None: ...

class DenyResponse(_message.Message):
    __slots__ = ("http_status", "www_authenticate", "body")
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    WWW_AUTHENTICATE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    http_status: int
    www_authenticate: str
    body: str
    def __init__(self, http_status: _Optional[int] = ..., www_authenticate: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ("allowed", "missing_scopes", "endpoint", "reason", "message", "required_scopes", "unknown_scopes", "token_format", "deny", "operation_id", "catalog_revision", "dry_run", "required_any_of")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    MISSING_SCOPES_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_SCOPES_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_SCOPES_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FORMAT_FIELD_NUMBER: _ClassVar[int]
    DENY_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    CATALOG_REVISION_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_ANY_OF_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    missing_scopes: _containers.RepeatedScalarFieldContainer[str]
    endpoint: str
    reason: Reason
    message: str
    required_scopes: _containers.RepeatedScalarFieldContainer[str]
    unknown_scopes: _containers.RepeatedScalarFieldContainer[str]
    token_format: TokenFormat
    deny: DenyResponse
    operation_id: str
    catalog_revision: str
    dry_run: bool
    required_any_of: _containers.RepeatedCompositeFieldContainer[ScopeSet]
    def __init__(self, allowed: _Optional[bool] = ..., missing_scopes: _Optional[_Iterable[str]] = ..., endpoint: _Optional[str] = ..., reason: _Optional[_Union[Reason, str]] = ..., message: _Optional[str] = ..., required_scopes: _Optional[_Iterable[str]] = ..., unknown_scopes: _Optional[_Iterable[str]] = ..., token_format: _Optional[_Union[TokenFormat, str]] = ..., deny: _Optional[_Union[DenyResponse, _Mapping]] = ..., operation_id: _Optional[str] = ..., catalog_revision: _Optional[str] = ..., dry_run: _Optional[bool] = ..., required_any_of: _Optional[_Iterable[_Union[ScopeSet, _Mapping]]] = ...) -> None: ...

class CheckBatchRequest(_message.Message):
    __slots__ = ("checks",)
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    checks: _containers.RepeatedCompositeFieldContainer[CheckRequest]
    def __init__(self, checks: _Optional[_Iterable[_Union[CheckRequest, _Mapping]]] = ...) -> None: ...

class CheckBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[CheckResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[CheckResponse, _Mapping]]] = ...) -> None: ...

class PlanRequest(_message.Message):
    __slots__ = ("features", "client_id", "redirect_uri", "existing_scopes", "state", "code_challenge")
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_URI_FIELD_NUMBER: _ClassVar[int]
    EXISTING_SCOPES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CODE_CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    features: _containers.RepeatedScalarFieldContainer[str]
    client_id: str
    redirect_uri: str
    existing_scopes: _containers.RepeatedScalarFieldContainer[str]
    state: str
    code_challenge: str
    def __init__(self, features: _Optional[_Iterable[str]] = ..., client_id: _Optional[str] = ..., redirect_uri: _Optional[str] = ..., existing_scopes: _Optional[_Iterable[str]] = ..., state: _Optional[str] = ..., code_challenge: _Optional[str] = ...) -> None: ...

class ScopeUse(_message.Message):
    __slots__ = ("scope", "needed_by", "optional")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    NEEDED_BY_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_FIELD_NUMBER: _ClassVar[int]
    scope: str
    needed_by: _containers.RepeatedScalarFieldContainer[str]
    optional: bool
    def __init__(self, scope: _Optional[str] = ..., needed_by: _Optional[_Iterable[str]] = ..., optional: _Optional[bool] = ...) -> None: ...

class OverBroadScope(_message.Message):
    __slots__ = ("scope", "note")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    scope: str
    note: str
    def __init__(self, scope: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class PlanResponse(_message.Message):
    __slots__ = ("scopes", "optional_scopes", "authorize_url", "uses", "over_broad", "missing_from_existing", "unknown_scopes", "notes")
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_SCOPES_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZE_URL_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    OVER_BROAD_FIELD_NUMBER: _ClassVar[int]
    MISSING_FROM_EXISTING_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_SCOPES_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    scopes: _containers.RepeatedScalarFieldContainer[str]
    optional_scopes: _containers.RepeatedScalarFieldContainer[str]
    authorize_url: str
    uses: _containers.RepeatedCompositeFieldContainer[ScopeUse]
    over_broad: _containers.RepeatedCompositeFieldContainer[OverBroadScope]
    missing_from_existing: _containers.RepeatedScalarFieldContainer[str]
    unknown_scopes: _containers.RepeatedScalarFieldContainer[str]
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, scopes: _Optional[_Iterable[str]] = ..., optional_scopes: _Optional[_Iterable[str]] = ..., authorize_url: _Optional[str] = ..., uses: _Optional[_Iterable[_Union[ScopeUse, _Mapping]]] = ..., over_broad: _Optional[_Iterable[_Union[OverBroadScope, _Mapping]]] = ..., missing_from_existing: _Optional[_Iterable[str]] = ..., unknown_scopes: _Optional[_Iterable[str]] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class WebhookSubscriptionRequest(_message.Message):
    __slots__ = ("token", "events", "subscription_scope", "subscription_level")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_SCOPE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_LEVEL_FIELD_NUMBER: _ClassVar[int]
    token: Token
    events: _containers.RepeatedScalarFieldContainer[str]
    subscription_scope: SubscriptionScope
    subscription_level: str
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ..., events: _Optional[_Iterable[str]] = ..., subscription_scope: _Optional[_Union[SubscriptionScope, str]] = ..., subscription_level: _Optional[str] = ...) -> None: ...

class WebhookDeliveryRequest(_message.Message):
    __slots__ = ("token", "event")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    token: Token
    event: str
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ..., event: _Optional[str] = ...) -> None: ...

class EventScopes(_message.Message):
    __slots__ = ("event", "allowed", "allowed_levels")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_LEVELS_FIELD_NUMBER: _ClassVar[int]
    event: str
    allowed: _containers.RepeatedScalarFieldContainer[SubscriptionScope]
    allowed_levels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event: _Optional[str] = ..., allowed: _Optional[_Iterable[_Union[SubscriptionScope, str]]] = ..., allowed_levels: _Optional[_Iterable[str]] = ...) -> None: ...

class WebhookDecision(_message.Message):
    __slots__ = ("allowed", "reason", "message", "required_scopes", "missing_scopes", "unknown_scopes", "token_format", "unknown_events", "disallowed_events")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_SCOPES_FIELD_NUMBER: _ClassVar[int]
    MISSING_SCOPES_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_SCOPES_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FORMAT_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_EVENTS_FIELD_NUMBER: _ClassVar[int]
    DISALLOWED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reason: Reason
    message: str
    required_scopes: _containers.RepeatedScalarFieldContainer[str]
    missing_scopes: _containers.RepeatedScalarFieldContainer[str]
    unknown_scopes: _containers.RepeatedScalarFieldContainer[str]
    token_format: TokenFormat
    unknown_events: _containers.RepeatedScalarFieldContainer[str]
    disallowed_events: _containers.RepeatedCompositeFieldContainer[EventScopes]
    def __init__(self, allowed: _Optional[bool] = ..., reason: _Optional[_Union[Reason, str]] = ..., message: _Optional[str] = ..., required_scopes: _Optional[_Iterable[str]] = ..., missing_scopes: _Optional[_Iterable[str]] = ..., unknown_scopes: _Optional[_Iterable[str]] = ..., token_format: _Optional[_Union[TokenFormat, str]] = ..., unknown_events: _Optional[_Iterable[str]] = ..., disallowed_events: _Optional[_Iterable[_Union[EventScopes, _Mapping]]] = ...) -> None: ...

class DiagnoseRequest(_message.Message):
    __slots__ = ("requested_scopes", "granted_scopes", "method", "path", "event")
    REQUESTED_SCOPES_FIELD_NUMBER: _ClassVar[int]
    GRANTED_SCOPES_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    requested_scopes: _containers.RepeatedScalarFieldContainer[str]
    granted_scopes: _containers.RepeatedScalarFieldContainer[str]
    method: str
    path: str
    event: str
    def __init__(self, requested_scopes: _Optional[_Iterable[str]] = ..., granted_scopes: _Optional[_Iterable[str]] = ..., method: _Optional[str] = ..., path: _Optional[str] = ..., event: _Optional[str] = ...) -> None: ...

class MissingScope(_message.Message):
    __slots__ = ("scope", "cause", "action")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    scope: str
    cause: Cause
    action: str
    def __init__(self, scope: _Optional[str] = ..., cause: _Optional[_Union[Cause, str]] = ..., action: _Optional[str] = ...) -> None: ...

class DiagnoseResponse(_message.Message):
    __slots__ = ("target", "required_scopes", "missing", "needs_reauthorization", "summary", "steps", "unknown_scopes", "granted_not_requested")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_SCOPES_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    NEEDS_REAUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_SCOPES_FIELD_NUMBER: _ClassVar[int]
    GRANTED_NOT_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    target: str
    required_scopes: _containers.RepeatedScalarFieldContainer[str]
    missing: _containers.RepeatedCompositeFieldContainer[MissingScope]
    needs_reauthorization: bool
    summary: str
    steps: _containers.RepeatedScalarFieldContainer[str]
    unknown_scopes: _containers.RepeatedScalarFieldContainer[str]
    granted_not_requested: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, target: _Optional[str] = ..., required_scopes: _Optional[_Iterable[str]] = ..., missing: _Optional[_Iterable[_Union[MissingScope, _Mapping]]] = ..., needs_reauthorization: _Optional[bool] = ..., summary: _Optional[str] = ..., steps: _Optional[_Iterable[str]] = ..., unknown_scopes: _Optional[_Iterable[str]] = ..., granted_not_requested: _Optional[_Iterable[str]] = ...) -> None: ...

class GetCatalogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ScopeInfo(_message.Message):
    __slots__ = ("name", "category", "description", "implies")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    IMPLIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    category: str
    description: str
    implies: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., category: _Optional[str] = ..., description: _Optional[str] = ..., implies: _Optional[_Iterable[str]] = ...) -> None: ...

class EndpointInfo(_message.Message):
    __slots__ = ("method", "path", "scopes", "operation_id", "summary", "required_any_of", "public")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_ANY_OF_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    method: str
    path: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    operation_id: str
    summary: str
    required_any_of: _containers.RepeatedCompositeFieldContainer[ScopeSet]
    public: bool
    def __init__(self, method: _Optional[str] = ..., path: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., operation_id: _Optional[str] = ..., summary: _Optional[str] = ..., required_any_of: _Optional[_Iterable[_Union[ScopeSet, _Mapping]]] = ..., public: _Optional[bool] = ...) -> None: ...

class EventInfo(_message.Message):
    __slots__ = ("name", "scope", "subscription_scopes", "required_any_of", "subscription_levels")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_SCOPES_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_ANY_OF_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_LEVELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    scope: str
    subscription_scopes: _containers.RepeatedScalarFieldContainer[SubscriptionScope]
    required_any_of: _containers.RepeatedCompositeFieldContainer[ScopeSet]
    subscription_levels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., scope: _Optional[str] = ..., subscription_scopes: _Optional[_Iterable[_Union[SubscriptionScope, str]]] = ..., required_any_of: _Optional[_Iterable[_Union[ScopeSet, _Mapping]]] = ..., subscription_levels: _Optional[_Iterable[str]] = ...) -> None: ...

class FeatureInfo(_message.Message):
    __slots__ = ("name", "description", "requires", "optional")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    requires: _containers.RepeatedScalarFieldContainer[str]
    optional: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., requires: _Optional[_Iterable[str]] = ..., optional: _Optional[_Iterable[str]] = ...) -> None: ...

class CatalogInfo(_message.Message):
    __slots__ = ("name", "revision", "description", "source", "authorize_url", "scopes_introduced_at", "scopes", "endpoints", "events", "features", "subscribe_scope", "legacy_equivalent_scopes", "subscription_levels")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZE_URL_FIELD_NUMBER: _ClassVar[int]
    SCOPES_INTRODUCED_AT_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_SCOPE_FIELD_NUMBER: _ClassVar[int]
    LEGACY_EQUIVALENT_SCOPES_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_LEVELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    revision: str
    description: str
    source: str
    authorize_url: str
    scopes_introduced_at: _timestamp_pb2.Timestamp
    scopes: _containers.RepeatedCompositeFieldContainer[ScopeInfo]
    endpoints: _containers.RepeatedCompositeFieldContainer[EndpointInfo]
    events: _containers.RepeatedCompositeFieldContainer[EventInfo]
    features: _containers.RepeatedCompositeFieldContainer[FeatureInfo]
    subscribe_scope: str
    legacy_equivalent_scopes: _containers.RepeatedScalarFieldContainer[str]
    subscription_levels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., revision: _Optional[str] = ..., description: _Optional[str] = ..., source: _Optional[str] = ..., authorize_url: _Optional[str] = ..., scopes_introduced_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scopes: _Optional[_Iterable[_Union[ScopeInfo, _Mapping]]] = ..., endpoints: _Optional[_Iterable[_Union[EndpointInfo, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[EventInfo, _Mapping]]] = ..., features: _Optional[_Iterable[_Union[FeatureInfo, _Mapping]]] = ..., subscribe_scope: _Optional[str] = ..., legacy_equivalent_scopes: _Optional[_Iterable[str]] = ..., subscription_levels: _Optional[_Iterable[str]] = ...) -> None: ...
