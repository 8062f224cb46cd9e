"""Reconciling a provider call whose outcome is unknown: the worker died
during it, or the request went out and no answer came back. Before anything
is sent again, the provider's rule (AfterUnknownOutcome) decides:

- Twilio (SMS, voice) and Slack are asked, through their list and history
  APIs, and a message they already have is adopted;
- SMTP cannot be asked, so the email is sent again, with the same Message-ID;
- WhatsApp cannot be asked either, and the delivery fails as "outcome unknown"
  unless its status webhook has already named the message.

Each case leaves a line in the delivery's history."""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from providers.base import (
    AfterUnknownOutcome,
    OutboundMessage,
    Provider,
    ProviderAccepted,
    ProviderError,
)
from server import metrics, tracing
from server.store import notifications as store
from server.store.db import Database
from server.store.notifications import DeliveryRecord

OUTCOME_UNKNOWN = "outcome unknown"
# What a tenant reads when an adapter fails in a way it does not classify.
ADAPTER_FAILURE = (
    "the platform could not hand this message to the provider (an internal error, "
    "logged for the operator); it was not retried"
)

log = logging.getLogger(__name__)


async def call_provider(
    provider: Provider, message: OutboundMessage, *, via: str
) -> ProviderAccepted:
    """The provider call (`via` names the provider), with any failure an
    adapter did not classify turned into a permanent ProviderError: retrying
    a bug cannot fix it, and "provider unavailable" would not be true. Its
    outcome counts as unknown, because the adapter may have failed after the
    request went out. Each call is timed and counted by outcome."""
    started = time.perf_counter()
    outcome = "accepted"
    try:
        with tracing.client_span(
            f"provider {via}", {"clarion.channel": message.channel, "clarion.provider": via}
        ):
            return await provider.send(message)
    except ProviderError as error:
        outcome = attempt_outcome(error)
        raise
    except Exception as exc:
        outcome = "unknown"
        log.exception("provider adapter for %s failed on %s", message.channel, message.delivery_id)
        raise ProviderError(
            ADAPTER_FAILURE, permanent=True, detail=repr(exc), outcome_unknown=True
        ) from exc
    finally:
        labels = (message.channel, via, outcome)
        metrics.PROVIDER_CALL_SECONDS.labels(*labels).observe(time.perf_counter() - started)
        metrics.ATTEMPTS.labels(*labels).inc()


def attempt_outcome(error: ProviderError) -> str:
    if error.outcome_unknown:
        return "unknown"
    return "permanent" if error.permanent else "transient"


def unknown_outcome_note(reason: str) -> str:
    """History line of an attempt that may have reached the provider."""
    return f"{reason}: {OUTCOME_UNKNOWN}, the provider may have the message"


@dataclass(frozen=True)
class Reconciled:
    """What to do with a delivery whose last attempt has no known outcome.
    All empty: nothing was sent, so send again."""

    # The provider has the message: record it as handed over.
    adopted: ProviderAccepted | None = None
    # Give up: the delivery fails with this reason.
    fail_reason: str = ""
    # The provider could not be asked now: ask again later, sending nothing.
    retry_reason: str = ""
    # With retry_reason: ask no sooner than this.
    wait_seconds: float = 0.0


async def reconcile(
    db: Database,
    provider: Provider,
    delivery: DeliveryRecord,
    message: OutboundMessage,
    *,
    settle_after: timedelta,
) -> Reconciled:
    """`settle_after`: how long after its mark an attempt's call has surely
    ended (answered or timed out). A younger mark may belong to a call still
    running elsewhere (a worker that lost its heartbeat or workflow task
    under load, but lives on): asking the provider now could miss a message
    about to arrive, and sending again would double it. So wait."""
    assert delivery.attempt_started_at is not None
    started = delivery.attempt_started_at
    in_flight = started + settle_after - datetime.now(UTC)
    if in_flight > timedelta(0):
        return Reconciled(
            retry_reason=f"an attempt at {started:%H:%M:%S} UTC may still be in flight",
            wait_seconds=in_flight.total_seconds(),
        )
    prefix = f"attempt at {started:%H:%M:%S} UTC had no recorded outcome"
    # A receipt may have named the message meanwhile (receipts record the
    # provider's id on a delivery that has none): then the outcome is known.
    async with db.transaction() as session:
        now_known = await store.get_delivery(session, delivery_id=delivery.delivery_id)
    if now_known is not None and now_known.provider_message_id:
        return Reconciled(adopted=ProviderAccepted(now_known.provider_message_id))
    rule = provider.after_unknown_outcome
    result = Reconciled()
    if rule is AfterUnknownOutcome.LOOK_UP:
        try:
            candidates = await provider.look_up(message, since=started)
        except ProviderError as error:
            result = Reconciled(
                retry_reason=f"{prefix}; asking the provider failed: {error.reason}"
            )
        else:
            async with db.transaction() as session:
                taken = await store.recorded_provider_message_ids(
                    session,
                    channel=delivery.channel,
                    provider_message_ids=[c.provider_message_id for c in candidates],
                    other_than=delivery.delivery_id,
                )
            mine = [c for c in candidates if c.provider_message_id not in taken]
            if mine:
                note = f"{prefix}; the provider has it ({mine[0].provider_message_id}): adopted"
                result = Reconciled(adopted=mine[0])
            else:
                note = f"{prefix}; the provider does not have it: sending again"
    elif rule is AfterUnknownOutcome.RESEND:
        note = f"{prefix}; the provider cannot be asked: sending again, same message id"
    else:
        result = Reconciled(
            fail_reason=(
                f"{OUTCOME_UNKNOWN}: the provider may have sent it and cannot be asked, "
                "so it was not sent again"
            )
        )
        note = f"{prefix}; the provider cannot be asked: not sent again"
    if result.retry_reason:
        note = result.retry_reason
    async with db.transaction() as session:
        await store.record_attempt(
            session,
            delivery_id=delivery.delivery_id,
            outcome=note,
            now=datetime.now(UTC),
            # The mark stays until what replaces it is committed: the adopted
            # message, the failure, or (sending again) the next attempt's mark.
            unknown=result != Reconciled(),
        )
    return result
