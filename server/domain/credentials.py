"""API keys and portal passwords: how they are made, hashed and judged."""

import asyncio
import contextlib
import hashlib
import multiprocessing
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher
from zxcvbn import zxcvbn

from server.domain.errors import ClarionError, ErrorKind

T = TypeVar("T")

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


# zxcvbn's score: 3 is "safely unguessable: moderate protection from an
# offline slow-hash scenario" (about 10^8 guesses or more).
MIN_PASSWORD_SCORE = 3
# zxcvbn refuses longer input, and its matching grows quickly with length; a
# passphrase whose first 72 characters are strong is strong.
_STRENGTH_CHARS = 72


def password_weakness(password: str, user_inputs: Sequence[str]) -> str | None:
    """Why the password is too easy to guess, or None if it is strong enough.
    `user_inputs` are the account's own words (name, email), which count as guessable."""
    result = zxcvbn(password[:_STRENGTH_CHARS], user_inputs=list(user_inputs))
    if result["score"] >= MIN_PASSWORD_SCORE:
        return None
    feedback = result["feedback"]
    reasons = [feedback["warning"], *feedback["suggestions"]]
    return " ".join(r for r in reasons if r) or "It is too easy to guess."


class PasswordWork:
    """Runs argon2 (64 MiB per hash) and the zxcvbn strength check in a worker
    process at a lower CPU priority, never on the event loop. A thread would
    not do: zxcvbn is pure Python and holds the GIL (50 weak-password signups
    a second in a thread tripled another tenant's p99). At most `max_waiting`
    calls queue; past that the caller is told to retry, so a flood of signups
    costs bounded memory and CPU."""

    def __init__(self, max_waiting: int = 16, niceness: int = 10) -> None:
        self._niceness = niceness
        self._pool = self._new_pool()
        self._capacity = 1 + max_waiting
        self._in_flight = 0
        # Start the worker now, so the first signup (or the first of a
        # flood) does not pay for its start and imports.
        self._pool.submit(os.getpid)

    def _new_pool(self) -> ProcessPoolExecutor:
        # Spawned, not forked: the API process has gRPC and event loop threads.
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_setup,
            initargs=(self._niceness,),
        )

    def check_capacity(self, busy: str = "SIGNUP_BUSY") -> None:
        """Raises `busy` (SIGNUP_BUSY, or LOGIN_BUSY for logins) while the
        queue is full, so that a caller can refuse before doing any other work."""
        if self._in_flight >= self._capacity:
            what = "logins" if busy == "LOGIN_BUSY" else "signups"
            raise ClarionError(
                ErrorKind.UNAVAILABLE,
                busy,
                f"too many {what} are being processed; try again in a few seconds",
                retry_after_seconds=2,
            )

    async def run(self, work: Callable[..., T], *args: Any, busy: str = "SIGNUP_BUSY") -> T:
        self.check_capacity(busy)
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._pool, work, *args)
            except BrokenProcessPool:
                # The worker died (killed, out of memory): start another once.
                self._pool = self._new_pool()
                return await loop.run_in_executor(self._pool, work, *args)
        finally:
            self._in_flight -= 1

    async def hash(self, password: str) -> str:
        return await self.run(hash_password, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self.run(verify_password, password_hash, password, busy="LOGIN_BUSY")

    async def weakness(self, password: str, user_inputs: Sequence[str]) -> str | None:
        return await self.run(password_weakness, password, list(user_inputs))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _worker_setup(niceness: int) -> None:
    with contextlib.suppress(OSError):
        os.nice(niceness)
    # Linux's idle class: the worker (and argon2's lane threads, which
    # inherit it) yields the CPU at once whenever an API thread wakes up.
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    # A worker outlives a SIGKILLed API server otherwise.
    parent = os.getppid()
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)
