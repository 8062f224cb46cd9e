"""Portal sessions and invitation tokens: how they are made and how long they live."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

# A session ends after this long without a request, and after ABSOLUTE in any case.
IDLE = timedelta(hours=12)
ABSOLUTE = timedelta(days=7)
# Recording every request's time would turn each read into a write.
SEEN_GRANULARITY = timedelta(minutes=1)
INVITATION_LIFETIME = timedelta(days=7)
# An invitation's email notification has this idempotency key prefix. Its
# content holds the link, which would let any reader join with the invited
# role, so only owners see it (the sandbox inbox, a notification's content).
INVITATION_KEY_PREFIX = "invitation-"


def carries_invitation(idempotency_key: str | None) -> bool:
    return (idempotency_key or "").startswith(INVITATION_KEY_PREFIX)


def hash_token(token: str) -> str:
    # 256 random bits: a fast hash suffices, as for API keys.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewSession:
    # The cookie's value; only its hash is stored.
    token: str
    token_hash: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime


def new_session(now: datetime) -> NewSession:
    token = secrets.token_urlsafe(32)
    return NewSession(
        token=token,
        token_hash=hash_token(token),
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + ABSOLUTE,
    )


def session_alive(*, last_seen_at: datetime, expires_at: datetime, now: datetime) -> bool:
    return now < expires_at and now - last_seen_at < IDLE
