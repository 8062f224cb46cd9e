"""A tenant's delivery outcomes by channel over the last hour or day, for the
portal's overview, read from the per-minute counters alert rules use (see
store.alerts.COUNT_MOVES_SQL), so the cost does not grow with traffic."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from server.domain.errors import invalid
from server.store import alerts as counters
from server.store.db import Database

# Window name -> (bucket minutes, buckets).
WINDOWS = {"1h": (5, 12), "24h": (60, 24)}


@dataclass
class Counts:
    delivered: int = 0
    failed: int = 0
    sent: int = 0

    @property
    def failure_rate(self) -> float:
        finished = self.delivered + self.failed
        return self.failed / finished if finished else 0.0


@dataclass
class ChannelStats:
    channel: str
    total: Counts = field(default_factory=Counts)
    # (bucket start, counts), oldest first, every bucket of the window.
    buckets: list[tuple[datetime, Counts]] = field(default_factory=list)


@dataclass(frozen=True)
class StatsWindow:
    start: datetime
    end: datetime
    bucket_seconds: int
    channels: list[ChannelStats]


class DeliveryStats:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def window(
        self, *, tenant_id: str, window: str, now: datetime | None = None
    ) -> StatsWindow:
        name = window or "1h"
        if name not in WINDOWS:
            raise invalid(
                "INVALID_ARGUMENT", "window", f"window must be one of: {', '.join(WINDOWS)}"
            )
        bucket_minutes, count = WINDOWS[name]
        end = now or datetime.now(UTC)
        # Buckets end with the current minute's, so the newest one is partial.
        start = end.replace(second=0, microsecond=0) - timedelta(minutes=bucket_minutes * count - 1)
        async with self._db.transaction() as session:
            rows = await counters.channel_buckets(
                session, tenant_id=tenant_id, since=start, bucket_minutes=bucket_minutes
            )
        starts = [start + timedelta(minutes=bucket_minutes * i) for i in range(count)]
        by_channel: dict[str, ChannelStats] = {}
        for channel, bucket_start, delivered, failed, sent in rows:
            stats = by_channel.get(channel)
            if stats is None:
                stats = by_channel[channel] = ChannelStats(
                    channel, buckets=[(s, Counts()) for s in starts]
                )
            index = round((bucket_start - start) / timedelta(minutes=bucket_minutes))
            bucket = stats.buckets[index][1]
            for counts in (bucket, stats.total):
                counts.delivered += delivered
                counts.failed += failed
                counts.sent += sent
        return StatsWindow(
            start, end, bucket_minutes * 60, [by_channel[c] for c in sorted(by_channel)]
        )
