"""API keys and portal passwords."""

import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher

KEY_PREFIX = "clk_"
# Characters shown in listings so that a tenant can tell keys apart.
VISIBLE_PREFIX_LENGTH = 12

_passwords = PasswordHasher()


@dataclass(frozen=True)
class NewApiKey:
    secret: str
    prefix: str
    key_hash: str


def new_api_key() -> NewApiKey:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    return NewApiKey(secret, secret[:VISIBLE_PREFIX_LENGTH], hash_api_key(secret))


def hash_api_key(secret: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough and keeps lookups cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _passwords.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _passwords.verify(password_hash, password)
    except Exception:
        return False
