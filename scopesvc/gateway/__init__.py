"""Gateway adapters: Envoy ext_authz v3 over gRPC, and HTTP forward-auth for NGINX, Traefik and the like.

Both map a request as the gateway saw it to one engine decision (attributes.py) and send the
engine's own deny answer back; docs/gateways.md shows the gateway configurations.
"""

from .attributes import GatewayConfig
from .ext_authz import ExtAuthzService
from .forward_auth import ForwardAuth

__all__ = ["ExtAuthzService", "ForwardAuth", "GatewayConfig"]
