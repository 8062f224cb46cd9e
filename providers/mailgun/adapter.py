"""Email over SMTP submission (aiosmtplib)."""

import functools
from datetime import datetime
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib

from providers.base import (
    AfterUnknownOutcome,
    OutboundMessage,
    ProviderAccepted,
    ProviderError,
)
from providers.mailgun.message_ids import email_message_id
from providers.mailgun.smtp_sessions import SmtpSessions


class _HeaderClasses(HeaderRegistry):
    """The standard header classes, each built once.

    CPython's HeaderRegistry builds a new class with type() for every header
    set, which was a tenth of the worker's CPU in an email bulk.
    """

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one registry, kept for the process
    def __getitem__(self, name: str) -> type[BaseHeader]:
        return super().__getitem__(name)


_POLICY = policy.default.clone(header_factory=_HeaderClasses())


class SmtpEmailProvider:
    # SMTP cannot be asked whether a message was taken. Sending again is the
    # lesser harm: the copy has the same Message-ID (derived from the
    # delivery), which RFC 5322 makes the message's identity, so mail systems
    # that de-duplicate by it show one message; a lost email shows none.
    after_unknown_outcome = AfterUnknownOutcome.RESEND

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str = "",
        password: str = "",
        starttls: bool = False,
        timeout: float = 15.0,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username or None
        self._password = password or None
        self._starttls = starttls
        self._timeout = timeout
        self._envelope_sender = parseaddr(sender)[1]
        self._domain = self._envelope_sender.partition("@")[2] or "clarion.local"
        self.sessions = SmtpSessions(self._open_session)

    def _open_session(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            start_tls=self._starttls,
            timeout=self._timeout,
        )

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        email = EmailMessage(policy=_POLICY)
        email["From"] = self._sender
        email["To"] = message.address
        email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=False)
        message_id = email_message_id(message.delivery_id, self._domain)
        email["Message-ID"] = message_id
        email.set_content(message.body)
        if message.html_body:
            email.add_alternative(message.html_body, subtype="html")
        try:
            await self.sessions.send(email, self._envelope_sender, message.address)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusal = exc.recipients[0] if exc.recipients else None
            raise _classify(refusal.code if refusal else 550, str(exc)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _classify(exc.code, str(exc)) from exc
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPConnectTimeoutError) as exc:
            raise ProviderError(
                "email server unavailable", permanent=False, detail=str(exc)
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Connected, then no answer or a dropped line: perhaps after DATA.
            raise ProviderError(
                "email server did not answer",
                permanent=False,
                detail=str(exc),
                outcome_unknown=True,
            ) from exc
        return ProviderAccepted(provider_message_id=message_id)

    async def look_up(self, message: OutboundMessage, *, since: datetime) -> list[ProviderAccepted]:
        return []


def _classify(code: int, detail: str) -> ProviderError:
    # SMTP 4xx replies are temporary by definition (RFC 5321 §4.2.1); 5xx are final.
    if 400 <= code < 500:
        return ProviderError("email server temporarily refused", permanent=False, detail=detail)
    if code in (530, 535):
        return ProviderError(
            "email provider rejected the platform's credentials", permanent=True, detail=detail
        )
    return ProviderError(
        "email address rejected by the receiving server", permanent=True, detail=detail
    )
