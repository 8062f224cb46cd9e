"""A dashboard-sized history, written with COPY rather than through the API:
`rows` finished notifications (one delivery each) spread over the last 30
days, shared evenly by the given tenants and as many made-up ones as it
takes to reach `tenants`. Sending a million notifications through the
platform would take hours here; what the list queries read is the same.

No row is left queued: recovery would start a workflow for a queued single
send, and the seed would become real traffic."""

import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

CHANNELS = (("sms", 50), ("email", 30), ("slack", 10), ("whatsapp", 10))
STATUSES = (("delivered", 92), ("failed", 5), ("sent", 3))
# One recipient that gets 5% of a tenant's notifications, as an on-call phone
# or a support address does: the list by recipient then has thousands of rows.
HOT_SHARE = 0.05
FIELDS = {"sms": "phone", "whatsapp": "phone", "email": "email"}


@dataclass(frozen=True)
class Seeded:
    rows: int
    tenants: int
    # Per tenant id: the recipient with HOT_SHARE of its notifications.
    hot_recipient: dict[str, str]


def _address(channel: str, n: int) -> str:
    if channel in ("sms", "whatsapp"):
        return f"+1646{n:07d}"
    if channel == "email":
        return f"user{n}@example.com"
    return f"U{n:08d}"


def _weighted(choices: tuple[tuple[str, int], ...], count: int, rng: random.Random) -> list[str]:
    names, weights = zip(*choices, strict=True)
    return rng.choices(names, weights=weights, k=count)


def seed(dsn: str, tenant_ids: list[str], *, rows: int, tenants: int) -> Seeded:
    rng = random.Random(42)
    now = datetime.now(UTC)
    made_up = [f"tnt_{secrets.token_hex(12)}" for _ in range(max(0, tenants - len(tenant_ids)))]
    everyone = tenant_ids + made_up
    per_tenant = rows // len(everyone)
    hot = {t: _address("sms", 9_000_000 + i) for i, t in enumerate(everyone)}
    with psycopg.connect(dsn, autocommit=False) as conn:
        with conn.cursor().copy("COPY tenants (id, name, email, created_at) FROM STDIN") as copy:
            for tenant_id in made_up:
                copy.write_row((tenant_id, "seeded", f"{tenant_id}@seed.example", now))
        for tenant_id in everyone:
            notes, sends = [], []
            channels = _weighted(CHANNELS, per_tenant, rng)
            statuses = _weighted(STATUSES, per_tenant, rng)
            for i in range(per_tenant):
                channel, status = channels[i], statuses[i]
                created = now - timedelta(seconds=rng.uniform(60, 30 * 86400))
                address = (
                    hot[tenant_id]
                    if channel == "sms" and rng.random() < HOT_SHARE * 2
                    else _address(channel, rng.randrange(200_000))
                )
                field = FIELDS.get(channel, "slack_user_id")
                note_id = f"ntf_{rng.randbytes(12).hex()}"
                delivery_id = f"dlv_{rng.randbytes(12).hex()}"
                notes.append(
                    (note_id, tenant_id, status, [channel], f'{{"{field}": "{address}"}}',
                     "", f"seeded {i}", "", "{}", created, created)
                )  # fmt: skip
                sends.append(
                    (delivery_id, note_id, tenant_id, channel, 0, address, status, 1,
                     f"seed-{delivery_id}", None, created, created)
                )  # fmt: skip
            # One COPY at a time: a connection carries one.
            with conn.cursor().copy(
                "COPY notifications (id, tenant_id, status, channels, recipient, subject, body,"
                " template_id, data, created_at, updated_at) FROM STDIN"
            ) as copy:
                for row in notes:
                    copy.write_row(row)
            with conn.cursor().copy(
                "COPY deliveries (id, notification_id, tenant_id, channel, position, address,"
                " status, attempts, provider_message_id, attempt_provider, created_at,"
                " updated_at) FROM STDIN"
            ) as copy:
                for row in sends:
                    copy.write_row(row)
        conn.commit()
        # Now rather than by autovacuum and the checkpointer in the middle of
        # the next measurement (a ceiling taken right after the COPY ran at a
        # third of its rate).
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE) notifications, deliveries")
        conn.execute("CHECKPOINT")
    return Seeded(per_tenant * len(everyone), len(everyone), hot)
