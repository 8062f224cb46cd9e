"""Which role each RPC needs, and which RPCs change state (with a session
cookie those need the CSRF token). One table, by RPC: the transcoder maps
each HTTP method and path to one RPC, so the RPC is what a request does."""

from functools import cache

from google.api import annotations_pb2
from google.protobuf import descriptor_pool

from server.domain.roles import Role

_TENANTS = "/clarion.v1.TenantService/"
_TEAM = "/clarion.v1.TeamService/"
_PORTAL = "/clarion.v1.PortalService/"

# Only owners manage the team and API keys.
OWNER_ONLY = frozenset(
    {
        _TENANTS + "CreateApiKey",
        _TENANTS + "RevokeApiKey",
        _TEAM + "CreateInvitation",
        _TEAM + "CancelInvitation",
        _TEAM + "RemoveMember",
    }
)
# Methods about the caller's own portal session: an API key has none.
SESSION_ONLY = frozenset({_PORTAL + "Logout", _PORTAL + "GetSession"})


@cache
def read_only(method: str) -> bool:
    """True for RPCs bound to HTTP GET, which change nothing (every new
    method is covered by its binding). Anything else counts as a change."""
    service, _, name = method.lstrip("/").partition("/")
    try:
        descriptor = descriptor_pool.Default().FindMethodByName(f"{service}.{name}")
    except KeyError:
        return False
    rule = descriptor.GetOptions().Extensions[annotations_pb2.http]
    return bool(rule.WhichOneof("pattern") == "get")


def needed_role(method: str) -> Role:
    if method in OWNER_ONLY:
        return Role.OWNER
    if read_only(method) or method in SESSION_ONLY:
        return Role.VIEWER
    return Role.DEVELOPER
