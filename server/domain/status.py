"""Delivery statuses, how they move, and how a notification's status rolls up."""

from enum import StrEnum


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED)


# Statuses only move forward: a late or duplicate receipt never moves one back.
_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.FAILED: 2,
}


def can_move(current: DeliveryStatus, new: DeliveryStatus) -> bool:
    """True when `new` is a step forward from `current`. Final statuses never change."""
    return not current.is_final and _RANK[new] > _RANK[current]


def roll_up(statuses: list[DeliveryStatus]) -> DeliveryStatus:
    """The notification's status: queued while any delivery is queued, then sent
    while any is sent; once all are final, delivered if any channel delivered."""
    if DeliveryStatus.QUEUED in statuses:
        return DeliveryStatus.QUEUED
    if DeliveryStatus.SENT in statuses:
        return DeliveryStatus.SENT
    if DeliveryStatus.DELIVERED in statuses:
        return DeliveryStatus.DELIVERED
    return DeliveryStatus.FAILED
