"""Portal users, their sessions and invitations. Functions never commit: the
caller owns the transaction."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.sessions import NewSession
from server.store.tables import invitations, sessions, tenants, users


@dataclass(frozen=True)
class UserRecord:
    user_id: str
    tenant_id: str
    email: str
    password_hash: str
    role: str
    created_at: datetime


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    csrf_token: str
    last_seen_at: datetime
    expires_at: datetime
    user: UserRecord
    tenant_name: str


@dataclass(frozen=True)
class InvitationRecord:
    invitation_id: str
    tenant_id: str
    email: str
    role: str
    created_at: datetime
    expires_at: datetime


def _user(row: Row[Any]) -> UserRecord:
    return UserRecord(
        user_id=row.id,
        tenant_id=row.tenant_id,
        email=row.email,
        password_hash=row.password_hash,
        role=row.role,
        created_at=row.created_at,
    )


def _invitation(row: Row[Any]) -> InvitationRecord:
    return InvitationRecord(
        invitation_id=row.id,
        tenant_id=row.tenant_id,
        email=row.email,
        role=row.role,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


async def insert_user(
    session: AsyncSession,
    *,
    user_id: str,
    tenant_id: str,
    email: str,
    password_hash: str,
    role: str,
    now: datetime,
) -> None:
    await session.execute(
        insert(users).values(
            id=user_id,
            tenant_id=tenant_id,
            email=email,
            password_hash=password_hash,
            role=role,
            created_at=now,
        )
    )


async def find_user_by_email(session: AsyncSession, *, email: str) -> UserRecord | None:
    """Not tenant-scoped: this is how a login finds its tenant."""
    row = (await session.execute(select(users).where(users.c.email == email))).first()
    return _user(row) if row else None


async def list_users(session: AsyncSession, *, tenant_id: str) -> list[UserRecord]:
    rows = await session.execute(
        select(users).where(users.c.tenant_id == tenant_id).order_by(users.c.created_at, users.c.id)
    )
    return [_user(row) for row in rows]


async def lock_users(session: AsyncSession, *, tenant_id: str) -> list[UserRecord]:
    """The tenant's users, locked until commit, so that two removals cannot
    both leave it without an owner."""
    rows = await session.execute(
        select(users).where(users.c.tenant_id == tenant_id).order_by(users.c.id).with_for_update()
    )
    return [_user(row) for row in rows]


async def delete_user(session: AsyncSession, *, tenant_id: str, user_id: str) -> None:
    """Deletes the user; its sessions go with it (ON DELETE CASCADE)."""
    await session.execute(
        delete(users).where(users.c.tenant_id == tenant_id, users.c.id == user_id)
    )


async def insert_session(
    session: AsyncSession, *, session_id: str, user_id: str, tenant_id: str, new: NewSession
) -> None:
    await session.execute(
        insert(sessions).values(
            id=session_id,
            token_hash=new.token_hash,
            user_id=user_id,
            tenant_id=tenant_id,
            csrf_token=new.csrf_token,
            created_at=new.created_at,
            last_seen_at=new.created_at,
            expires_at=new.expires_at,
        )
    )


async def find_session(session: AsyncSession, *, token_hash: str) -> SessionRecord | None:
    """The unrevoked session with this token, with its user and tenant name.
    Not tenant-scoped: this is how a cookie's tenant is found."""
    row = (
        await session.execute(
            select(
                sessions.c.id.label("session_id"),
                sessions.c.csrf_token,
                sessions.c.last_seen_at,
                sessions.c.expires_at,
                tenants.c.name.label("tenant_name"),
                *users.c,
            )
            .join(users, users.c.id == sessions.c.user_id)
            .join(tenants, tenants.c.id == users.c.tenant_id)
            .where(sessions.c.token_hash == token_hash, sessions.c.revoked_at.is_(None))
        )
    ).first()
    if row is None:
        return None
    return SessionRecord(
        session_id=row.session_id,
        csrf_token=row.csrf_token,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        user=_user(row),
        tenant_name=row.tenant_name,
    )


async def touch_session(session: AsyncSession, *, session_id: str, now: datetime) -> None:
    await session.execute(
        update(sessions).where(sessions.c.id == session_id).values(last_seen_at=now)
    )


async def revoke_session(session: AsyncSession, *, session_id: str, now: datetime) -> None:
    await session.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def tenant_name(session: AsyncSession, *, tenant_id: str) -> str:
    return str(await session.scalar(select(tenants.c.name).where(tenants.c.id == tenant_id)))


async def upsert_invitation(
    session: AsyncSession, *, invitation: InvitationRecord, token_hash: str
) -> None:
    """Stores the invitation; one to the same email before is replaced (its link stops working)."""
    await session.execute(
        delete(invitations).where(
            invitations.c.tenant_id == invitation.tenant_id,
            invitations.c.email == invitation.email,
        )
    )
    await session.execute(
        insert(invitations).values(
            id=invitation.invitation_id,
            tenant_id=invitation.tenant_id,
            email=invitation.email,
            role=invitation.role,
            token_hash=token_hash,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
        )
    )


async def list_invitations(
    session: AsyncSession, *, tenant_id: str, now: datetime
) -> list[InvitationRecord]:
    """Pending (unexpired) invitations, oldest first."""
    rows = await session.execute(
        select(invitations)
        .where(invitations.c.tenant_id == tenant_id, invitations.c.expires_at > now)
        .order_by(invitations.c.created_at, invitations.c.id)
    )
    return [_invitation(row) for row in rows]


async def count_invitations(session: AsyncSession, *, tenant_id: str, now: datetime) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(invitations)
        .where(invitations.c.tenant_id == tenant_id, invitations.c.expires_at > now)
    )
    return int(count or 0)


async def delete_invitation(
    session: AsyncSession, *, tenant_id: str, invitation_id: str
) -> InvitationRecord | None:
    row = (
        await session.execute(
            delete(invitations)
            .where(invitations.c.tenant_id == tenant_id, invitations.c.id == invitation_id)
            .returning(*invitations.c)
        )
    ).first()
    return _invitation(row) if row else None


async def find_invitation(
    session: AsyncSession, *, token_hash: str, now: datetime
) -> InvitationRecord | None:
    """The unexpired invitation with this token. Not tenant-scoped: the token
    is how an invitee's tenant is found."""
    row = (
        await session.execute(
            select(invitations).where(
                invitations.c.token_hash == token_hash, invitations.c.expires_at > now
            )
        )
    ).first()
    return _invitation(row) if row else None


async def take_invitation(
    session: AsyncSession, *, token_hash: str, now: datetime
) -> InvitationRecord | None:
    """Deletes and returns the unexpired invitation with this token. Not
    tenant-scoped: the token is how an invitee's tenant is found."""
    row = (
        await session.execute(
            delete(invitations)
            .where(invitations.c.token_hash == token_hash, invitations.c.expires_at > now)
            .returning(*invitations.c)
        )
    ).first()
    return _invitation(row) if row else None


async def forget_ended(session: AsyncSession, *, now: datetime, idle_since: datetime) -> int:
    """Deletes sessions past their end (revoked, expired, idle since
    `idle_since`) and expired invitations; returns how many."""
    ended = await session.execute(
        delete(sessions).where(
            sessions.c.revoked_at.is_not(None)
            | (sessions.c.expires_at < now)
            | (sessions.c.last_seen_at < idle_since)
        )
    )
    expired = await session.execute(delete(invitations).where(invitations.c.expires_at < now))
    return int(ended.rowcount or 0) + int(expired.rowcount or 0)  # type: ignore[attr-defined]
