"""Open SMTP sessions to one server, kept for the next message.

RFC 5321 §3.3 lets a client run many mail transactions in one session, so a
message costs MAIL, RCPT and DATA instead of a TCP connection, the greeting,
EHLO (STARTTLS and AUTH where configured) and QUIT. aiosmtplib opens a session
per `aiosmtplib.send` and has no pool, hence this one.

A session goes back to the pool only after a transaction that succeeded; one
that failed in any way is closed. An idle session is checked with NOOP before
it is reused, because servers close idle sessions (RFC 5321 §4.5.3.2.7 asks
them to wait at least 5 minutes; we keep none idle for more than
IDLE_SECONDS), so a send never goes out on a session the server has dropped.
"""

import time
from collections.abc import Callable
from email.message import EmailMessage

import aiosmtplib

IDLE_SECONDS = 30.0
MAX_IDLE_SESSIONS = 32


class SmtpSessions:
    def __init__(self, open_session: Callable[[], aiosmtplib.SMTP]) -> None:
        self._open_session = open_session
        # Most recently used last: reuse takes the freshest.
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    async def send(self, email: EmailMessage, sender: str, recipient: str) -> None:
        """Sends on an idle session that answers NOOP, or on a new one, with
        the envelope given (so that its headers need not be parsed for it).
        Raises what aiosmtplib raises: connecting (SMTPConnectError,
        SMTPConnectTimeoutError) or in the transaction."""
        session = await self._reusable()
        if session is None:
            session = self._open_session()
            await session.connect()
        try:
            await session.send_message(email, sender=sender, recipients=[recipient])
        except BaseException:
            session.close()
            raise
        self._idle.append((session, time.monotonic()))
        while len(self._idle) > MAX_IDLE_SESSIONS:
            self._idle.pop(0)[0].close()

    async def _reusable(self) -> aiosmtplib.SMTP | None:
        while self._idle:
            session, idle_since = self._idle.pop()
            if time.monotonic() - idle_since > IDLE_SECONDS or not session.is_connected:
                session.close()
                continue
            try:
                await session.noop()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                session.close()
                continue
            return session
        return None

    async def aclose(self) -> None:
        """Ends the idle sessions with QUIT."""
        idle, self._idle = self._idle, []
        for session, _ in idle:
            try:
                await session.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                session.close()
