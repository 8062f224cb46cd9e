"""Policies fixed by configuration and read by both the API server and the
worker: template rollout and idempotency keys. (DeliveryPolicy is part of
the workflow inputs, in contracts.workflows.)"""

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RolloutPolicy:
    # Stop when the new version's failure rate exceeds the active one's by this much.
    failure_margin: float = 0.2
    # ... once the new version has at least this many final deliveries.
    min_sends: int = 20


@dataclass(frozen=True)
class IdempotencyPolicy:
    # How long a key is remembered; after that it may be used again.
    retention: timedelta = timedelta(hours=24)
    # A claim older than this with no answer is from a request that died.
    abandoned_after: timedelta = timedelta(seconds=60)
