"""An adapter failure the adapter did not classify is a permanent failure
with a true reason, and its outcome counts as unknown."""

from datetime import datetime

import pytest

from providers.base import (
    AfterUnknownOutcome,
    OutboundMessage,
    ProviderAccepted,
    ProviderError,
)
from workflows.reconcile import ADAPTER_FAILURE, call_provider


class BrokenAdapter:
    after_unknown_outcome = AfterUnknownOutcome.RESEND

    def __init__(self, error: Exception) -> None:
        self._error = error

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        raise self._error

    async def look_up(self, message: OutboundMessage, *, since: datetime) -> list[ProviderAccepted]:
        return []


MESSAGE = OutboundMessage("dlv_1", "ntf_1", "email", "a@example.com", "s", "b")


async def test_an_unclassified_adapter_error_fails_permanently_with_a_true_reason() -> None:
    with pytest.raises(ProviderError) as raised:
        await call_provider(BrokenAdapter(KeyError("sid")), MESSAGE, via="smtp")
    assert raised.value.permanent
    assert raised.value.outcome_unknown
    assert raised.value.reason == ADAPTER_FAILURE
    assert "KeyError" in raised.value.detail


async def test_a_classified_provider_error_passes_through_unchanged() -> None:
    error = ProviderError("provider rate limit", permanent=False, retry_after=1.0)
    with pytest.raises(ProviderError) as raised:
        await call_provider(BrokenAdapter(error), MESSAGE, via="smtp")
    assert raised.value is error
