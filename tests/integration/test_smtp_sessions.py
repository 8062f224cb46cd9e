"""The SMTP adapter keeps its sessions open for the next message, against a
real SMTP server (aiosmtpd) that counts connections and messages."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from providers.base import OutboundMessage, ProviderError
from providers.mailgun.adapter import SmtpEmailProvider


@dataclass
class Server:
    port: int = 0
    sessions: list[SMTP] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("unknown@"):
            return "550 5.1.1 Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.extend(envelope.rcpt_tos)
        self.envelopes.append(envelope)
        return "250 OK"

    def drop_sessions(self) -> None:
        """What a server does to sessions idle past its timeout."""
        for session in self.sessions:
            if session.transport is not None:
                session.transport.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()

    def factory() -> SMTP:
        session = SMTP(state, hostname="test.local", enable_SMTPUTF8=True)
        state.sessions.append(session)
        return session

    listening = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    state.port = listening.sockets[0].getsockname()[1]
    yield state
    listening.close()


def provider(server: Server) -> SmtpEmailProvider:
    return SmtpEmailProvider(
        host="127.0.0.1", port=server.port, sender="Clarion <noreply@clarion.test>", timeout=5
    )


def message(n: int, to: str = "") -> OutboundMessage:
    return OutboundMessage(
        delivery_id=f"dlv_{n}",
        notification_id=f"ntf_{n}",
        channel="email",
        address=to or f"user{n}@example.com",
        subject="s",
        body="b",
    )


async def test_messages_share_one_session_and_the_session_ends_with_quit(server: Server) -> None:
    smtp = provider(server)
    for n in range(3):
        await smtp.send(message(n))
    assert server.messages == [f"user{n}@example.com" for n in range(3)]
    assert len(server.sessions) == 1
    await smtp.sessions.aclose()
    await asyncio.sleep(0.1)
    assert server.sessions[0].transport is None  # QUIT ended it


async def test_a_message_arrives_as_written_in_any_language(server: Server) -> None:
    smtp = provider(server)
    sent = OutboundMessage(
        delivery_id="dlv_utf8",
        notification_id="ntf_utf8",
        channel="email",
        address="zoë@example.com",
        subject="Votre code de vérification — " + "très long " * 12,
        body="Bonjour Zoë,\n\nvotre code est 123456.\n" + "ligne longue " * 40,
        html_body="<p>Bonjour <b>Zoë</b>, votre code est 123456.</p>",
    )
    accepted = await smtp.send(sent)
    await smtp.sessions.aclose()
    [envelope] = server.envelopes
    assert (envelope.mail_from, envelope.rcpt_tos) == ("noreply@clarion.test", ["zoë@example.com"])
    assert envelope.smtp_utf8  # RFC 6531: a non-ASCII address needs SMTPUTF8
    assert isinstance(envelope.original_content, bytes)
    received = message_from_bytes(envelope.original_content, policy=policy.default)
    assert isinstance(received, EmailMessage)
    assert str(received["Subject"]) == sent.subject
    assert str(received["From"]) == "Clarion <noreply@clarion.test>"
    assert str(received["To"]) == sent.address
    assert str(received["Message-ID"]) == accepted.provider_message_id
    text, html = received.get_body(("plain",)), received.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().replace("\r\n", "\n") == sent.body + "\n"
    assert html.get_content().replace("\r\n", "\n") == sent.html_body + "\n"


async def test_a_session_the_server_dropped_is_replaced_and_nothing_is_sent_twice(
    server: Server,
) -> None:
    smtp = provider(server)
    await smtp.send(message(1))
    server.drop_sessions()
    await asyncio.sleep(0.1)
    await smtp.send(message(2))
    assert server.messages == ["user1@example.com", "user2@example.com"]
    assert len(server.sessions) == 2
    await smtp.sessions.aclose()


async def test_a_failed_transaction_closes_its_session(server: Server) -> None:
    smtp = provider(server)
    await smtp.send(message(1))
    with pytest.raises(ProviderError) as refused:
        await smtp.send(message(2, to="unknown@example.com"))
    assert refused.value.permanent
    await smtp.send(message(3))
    assert server.messages == ["user1@example.com", "user3@example.com"]
    # The refused transaction's session was not reused.
    assert len(server.sessions) == 2
    await smtp.sessions.aclose()


async def test_concurrent_sends_each_get_a_session_and_later_ones_reuse_them(
    server: Server,
) -> None:
    smtp = provider(server)
    await asyncio.gather(*(smtp.send(message(n)) for n in range(8)))
    assert len(server.sessions) == 8  # none was idle yet
    await asyncio.gather(*(smtp.send(message(n)) for n in range(8, 16)))
    assert sorted(server.messages) == sorted(f"user{n}@example.com" for n in range(16))
    assert len(server.sessions) == 8
    await smtp.sessions.aclose()
