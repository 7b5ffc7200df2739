"""The failure that is the service's own, not the token's."""

from __future__ import annotations


class TokensUnavailable(Exception):
    """No usable key set, metadata or introspection answer for an issuer: a token cannot be judged now.

    Front ends answer it as their own failure - gRPC UNAVAILABLE, HTTP 503, an error status to
    Envoy - never as an allow, and never as a deny that blames the token.
    """
