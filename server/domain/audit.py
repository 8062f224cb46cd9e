"""Who is acting, as the audit log records it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """The caller of a change: a portal user (email) or an API key (its prefix)."""

    tenant_id: str
    email: str = ""
    api_key: str = ""
