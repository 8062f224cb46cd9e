"""Fixtures: one sandbox subprocess (ephemeral ports) and one callback receiver per session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from .helpers import Receiver, SandboxProcess, start_sandbox


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.start()
    yield rec
    rec.stop()


@pytest.fixture(scope="session")
def sandbox(receiver: Receiver) -> Iterator[SandboxProcess]:
    proc = start_sandbox(
        "--callback-delay",
        "0.1",
        "--callback-backoff",
        "0.2",
        "--template-review-delay",
        "0.5",
        "--mailgun-webhook-url",
        receiver.url("/hooks/mailgun"),
        # A query string that must survive into signatures unchanged.
        "--whatsapp-webhook-url",
        receiver.url("/hooks/whatsapp?source=meta"),
        "--vonage-dlr-url",
        receiver.url("/hooks/vonage"),
        "--sendgrid-webhook-url",
        receiver.url("/hooks/sendgrid"),
    )
    yield proc
    code = proc.stop()
    assert code == 0, f"sandbox did not shut down cleanly ({code}):\n{proc.stderr()}"
    assert "Traceback" not in proc.stderr(), proc.stderr()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as c:
        yield c
