"""Reconciliation's decision against real PostgreSQL, for the race a clean
CI run hit: the crashed attempt's receipt arrives and records the provider's
message id on the delivery just before the retry asks the provider. The
message the look-up finds is then the delivery's own, not another's, and
must be adopted, not taken for "not found" and sent again."""

from datetime import UTC, datetime, timedelta

from providers.base import AfterUnknownOutcome, OutboundMessage, ProviderAccepted
from server.store import notifications as store
from server.store.db import Database
from tests.integration.test_store import new_notification
from workflows.reconcile import reconcile


class ListedProvider:
    """Answers look-ups with the messages given: the provider's list API."""

    after_unknown_outcome = AfterUnknownOutcome.LOOK_UP

    def __init__(self, listed: list[str]) -> None:
        self.listed = listed

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        raise AssertionError("reconciliation must not send")

    async def look_up(self, message: OutboundMessage, *, since: datetime) -> list[ProviderAccepted]:
        return [ProviderAccepted(sid) for sid in self.listed]


async def _marked(db: Database, provider_message_id: str | None) -> store.DeliveryRecord:
    """An SMS delivery whose attempt began 5 minutes ago with no recorded
    outcome, holding `provider_message_id` if a receipt has named it."""
    tenant_id, notification_id = await new_notification(db, ["sms"])
    async with db.transaction() as session:
        record = await store.get_notification(
            session, tenant_id=tenant_id, notification_id=notification_id
        )
        assert record is not None
        delivery_id = record.deliveries[0].delivery_id
        await store.begin_attempts(
            session, delivery_ids=[delivery_id], now=datetime.now(UTC) - timedelta(minutes=5)
        )
        if provider_message_id:
            await store.set_provider_message_id(
                session, delivery_id=delivery_id, provider_message_id=provider_message_id
            )
    async with db.transaction() as session:
        delivery = await store.get_delivery(session, delivery_id=delivery_id)
    assert delivery is not None and delivery.attempt_started_at is not None
    return delivery


def _message(delivery: store.DeliveryRecord) -> OutboundMessage:
    return OutboundMessage(
        delivery.delivery_id, delivery.notification_id, "sms", delivery.address, "", "b"
    )


async def test_a_message_the_delivery_already_holds_is_adopted_not_resent(db: Database) -> None:
    delivery = await _marked(db, "SMown")
    found = await reconcile(
        db, ListedProvider(["SMown"]), delivery, _message(delivery), settle_after=timedelta(0)
    )
    assert found.adopted == ProviderAccepted("SMown")


async def test_a_message_another_delivery_holds_is_not_adopted(db: Database) -> None:
    other = await _marked(db, "SMother")
    delivery = await _marked(db, None)
    found = await reconcile(
        db, ListedProvider([str(other.provider_message_id)]), delivery, _message(delivery),
        settle_after=timedelta(0),
    )  # fmt: skip
    assert found.adopted is None and not found.fail_reason and not found.retry_reason
