"""Portal roles: what each member of a tenant's team may do."""

from enum import StrEnum

from server.domain.errors import ClarionError, ErrorKind


class Role(StrEnum):
    # Everything, including the team and API keys.
    OWNER = "owner"
    # Everything else: sends, templates, routing, webhooks, alert rules.
    DEVELOPER = "developer"
    # Reads only.
    VIEWER = "viewer"


_RANK = {Role.VIEWER: 0, Role.DEVELOPER: 1, Role.OWNER: 2}


def allows(held: Role, needed: Role) -> bool:
    return _RANK[held] >= _RANK[needed]


def parse_role(value: str, field: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ClarionError(
            ErrorKind.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
            f"{field} must be one of owner, developer, viewer",
        ) from None


def role_forbidden(held: Role, needed: Role) -> ClarionError:
    return ClarionError(
        ErrorKind.PERMISSION_DENIED,
        "ROLE_FORBIDDEN",
        f"this needs the {needed.value} role (or higher); you are a {held.value}. "
        "Ask an owner of the account",
    )
