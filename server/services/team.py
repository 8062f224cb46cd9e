"""A tenant's team: members, invitations (sent as the tenant's own email
notifications), and removing members."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from server.domain.audit import Actor
from server.domain.errors import ClarionError, ErrorKind, limit_reached, not_found
from server.domain.ids import looks_like_id, new_id
from server.domain.roles import Role, parse_role
from server.domain.sending import SendRequest
from server.domain.sessions import INVITATION_KEY_PREFIX, INVITATION_LIFETIME, hash_token
from server.services.accounts import check_email
from server.services.audit import record
from server.services.notifications import Notifications
from server.store import tenants as tenants_store
from server.store import users as store
from server.store.db import Database
from server.store.users import InvitationRecord

MAX_PENDING_INVITATIONS = 100


@dataclass(frozen=True)
class MemberView:
    user_id: str
    email: str
    role: Role
    created_at: datetime


@dataclass(frozen=True)
class InvitationView:
    invitation_id: str
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime
    # Set only on the answer to an invite.
    notification_id: str = ""


def _invitation_view(record: InvitationRecord, notification_id: str = "") -> InvitationView:
    return InvitationView(
        invitation_id=record.invitation_id,
        email=record.email,
        role=Role(record.role),
        created_at=record.created_at,
        expires_at=record.expires_at,
        notification_id=notification_id,
    )


class Team:
    def __init__(self, db: Database, notifications: Notifications, portal_url: str) -> None:
        self._db = db
        self._notifications = notifications
        self._portal_url = portal_url.rstrip("/")

    async def members(self, *, tenant_id: str) -> tuple[list[MemberView], list[InvitationView]]:
        async with self._db.transaction() as session:
            users = await store.list_users(session, tenant_id=tenant_id)
            pending = await store.list_invitations(
                session, tenant_id=tenant_id, now=datetime.now(UTC)
            )
        return (
            [MemberView(u.user_id, u.email, Role(u.role), u.created_at) for u in users],
            [_invitation_view(i) for i in pending],
        )

    async def invite(self, *, actor: Actor, email: str, role: str) -> InvitationView:
        email = check_email(email)
        invited_role = parse_role(role, "role")
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        invitation = InvitationRecord(
            invitation_id=new_id("inv"),
            tenant_id=actor.tenant_id,
            email=email,
            role=invited_role.value,
            created_at=now,
            expires_at=now + INVITATION_LIFETIME,
        )
        async with self._db.transaction() as session:
            # Counted one at a time under the tenant's lock.
            await tenants_store.lock_tenant(session, tenant_id=actor.tenant_id)
            if await tenants_store.email_taken(session, email=email):
                raise ClarionError(
                    ErrorKind.ALREADY_EXISTS,
                    "EMAIL_TAKEN",
                    f"{email} already has a portal login (one email, one login); "
                    "invite another address",
                )
            pending = await store.count_invitations(session, tenant_id=actor.tenant_id, now=now)
            if pending >= MAX_PENDING_INVITATIONS:
                raise limit_reached(
                    "INVITATION_LIMIT",
                    f"a tenant may have at most {MAX_PENDING_INVITATIONS} pending invitations; "
                    "cancel some with DELETE /api/v1/invitations/{invitation_id}",
                )
            await store.upsert_invitation(
                session, invitation=invitation, token_hash=hash_token(token)
            )
            await record(
                session,
                actor,
                "invitation.created",
                invitation.invitation_id,
                f"{email} as {invited_role.value}",
            )
            tenant_name = await store.tenant_name(session, tenant_id=actor.tenant_id)
        inviter = actor.email or f"An API key ({actor.api_key}…)"
        accepted = await self._notifications.send(
            tenant_id=actor.tenant_id,
            request=SendRequest(
                channels=["email"],
                email=email,
                subject=f"You are invited to {tenant_name} on Clarion",
                body=(
                    f"{inviter} invited you to join {tenant_name} on Clarion as "
                    f"{invited_role.value}.\n\nChoose your password here (the link works for "
                    f"7 days, once):\n{self._portal_url}/portal/accept?token={token}\n"
                ),
                idempotency_key=INVITATION_KEY_PREFIX + invitation.invitation_id,
            ),
        )
        return _invitation_view(invitation, accepted.notification_id)

    async def cancel_invitation(self, *, actor: Actor, invitation_id: str) -> None:
        if not looks_like_id("inv", invitation_id):
            raise not_found("invitation")
        async with self._db.transaction() as session:
            cancelled = await store.delete_invitation(
                session, tenant_id=actor.tenant_id, invitation_id=invitation_id
            )
            if cancelled is None:
                raise not_found("invitation")
            await record(session, actor, "invitation.cancelled", invitation_id, cancelled.email)

    async def remove_member(self, *, actor: Actor, user_id: str) -> None:
        if not looks_like_id("usr", user_id):
            raise not_found("member")
        async with self._db.transaction() as session:
            users = await store.lock_users(session, tenant_id=actor.tenant_id)
            target = next((u for u in users if u.user_id == user_id), None)
            if target is None:
                raise not_found("member")
            owners = [u for u in users if u.role == Role.OWNER]
            if target.role == Role.OWNER and len(owners) == 1:
                raise ClarionError(
                    ErrorKind.FAILED_PRECONDITION,
                    "LAST_OWNER",
                    "this is the account's only owner; invite another owner first",
                )
            await store.delete_user(session, tenant_id=actor.tenant_id, user_id=user_id)
            await record(
                session, actor, "member.removed", user_id, f"{target.email} ({target.role})"
            )
