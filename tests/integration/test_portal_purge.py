"""What logins leave behind is purged: ended sessions, expired invitations
and login buckets that have refilled; live ones stay."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from server.domain.ids import new_id
from server.domain.limits import RateLimit
from server.domain.sessions import new_session
from server.services.portal import forget_ended
from server.store import limits, tenants, users
from server.store.db import Database
from server.store.tables import invitations, rate_buckets, sessions


async def test_ended_sessions_expired_invitations_and_full_buckets_are_purged(
    db: Database,
) -> None:
    now = datetime.now(UTC)
    tenant_id, user_id = new_id("tnt"), new_id("usr")
    ids = {name: new_id("ses") for name in ("live", "idle", "expired", "revoked")}
    async with db.transaction() as session:
        await tenants.insert_tenant(
            session, tenant_id=tenant_id, name="t", email=f"{tenant_id}@x.example", now=now
        )
        await users.insert_user(
            session,
            user_id=user_id,
            tenant_id=tenant_id,
            email=f"{user_id}@x.example",
            password_hash="h",
            role="owner",
            now=now,
        )
        for session_id in ids.values():
            await users.insert_session(
                session,
                session_id=session_id,
                user_id=user_id,
                tenant_id=tenant_id,
                new=new_session(now),
            )
        changes = {
            "idle": {"last_seen_at": now - timedelta(hours=13)},
            "expired": {"expires_at": now - timedelta(seconds=1)},
            "revoked": {"revoked_at": now},
        }
        for name, values in changes.items():
            await session.execute(update(sessions).where(sessions.c.id == ids[name]).values(values))
        for invitation_id, expires_at in (
            (new_id("inv"), now - timedelta(seconds=1)),
            (new_id("inv"), now + timedelta(days=1)),
        ):
            await users.upsert_invitation(
                session,
                invitation=users.InvitationRecord(
                    invitation_id,
                    tenant_id,
                    f"{invitation_id}@x.example",
                    "viewer",
                    now,
                    expires_at,
                ),
                token_hash=invitation_id,
            )
        rate = RateLimit(per_second=1, burst=5)
        for owner in (f"login-email:{tenant_id}", f"login-address:{tenant_id}"):
            assert await limits.take_tokens(session, owner=owner, name="login", rate=rate) is None
        await session.execute(
            update(rate_buckets)
            .where(rate_buckets.c.tenant_id == f"login-email:{tenant_id}")
            .values(refilled_at=now - timedelta(minutes=11))
        )

    assert await forget_ended(db) >= 5
    async with db.transaction() as session:
        left = await session.scalars(select(sessions.c.id).where(sessions.c.user_id == user_id))
        assert list(left) == [ids["live"]]
        count = await session.scalar(
            select(func.count())
            .select_from(invitations)
            .where(invitations.c.tenant_id == tenant_id)
        )
        assert count == 1
        buckets = await session.scalars(
            select(rate_buckets.c.tenant_id).where(rate_buckets.c.tenant_id.like(f"%{tenant_id}"))
        )
        assert list(buckets) == [f"login-address:{tenant_id}"]
