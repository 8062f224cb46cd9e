"""Bulk sends: one notification per recipient row, validated with the same
policy as a single send, stored in batches, and delivered by one workflow."""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.errors import ClarionError, invalid, not_found
from server.domain.ids import looks_like_id, new_id
from server.domain.routing import RoutingPolicy, RoutingRequest
from server.domain.sending import (
    BulkRow,
    ContentPlan,
    check_data,
    check_idempotency_key,
    plan_content,
    plan_recipient,
    plan_routing,
)
from server.services.bulk_csv import capped, csv_rows
from server.services.dispatch import Outbox
from server.services.idempotency import Claim, Idempotency, StreamHash
from server.services.notifications import build_notification, request_hash
from server.services.paging import (
    check_page_size,
    decode_page_token,
    decode_position,
    encode_page_token,
    encode_position,
)
from server.services.templates import LoadedTemplate, Templates
from server.store import bulks as store
from server.store import notifications as notification_store
from server.store import outbox as outbox_store
from server.store.bulks import RowError
from server.store.db import Database
from server.store.notifications import NewNotification

log = logging.getLogger(__name__)

MAX_JSON_RECIPIENTS = 10_000
MAX_UPLOAD_ROWS = 1_000_000
# Rows validated and stored per transaction during an upload.
UPLOAD_BATCH = 1_000
_ROWS_BETWEEN_YIELDS = 100
# Storing up to 10,000 validated rows, in a process at background priority:
# more than the default database limit, still under Envoy's 30 s route
# timeout. Rows are validated before their transaction opens: inside it,
# under another tenant's burst, a 10,000-row bulk's validation outlived this
# limit and the bulk was refused 503 after 27.7 s. Removing a large partial
# upload has nobody waiting.
STORING_SECONDS = 25.0
DISCARD_SECONDS = 300.0


@dataclass
class BulkSpec:
    channels: list[str]
    template_id: str = ""
    subject: str = ""
    body: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str = ""
    # Instead of `channels`: each row tries these channels in order.
    routing: RoutingRequest | None = None


@dataclass(frozen=True)
class BulkPlan:
    content: ContentPlan
    routing: RoutingPolicy | None


@dataclass(frozen=True)
class RowRefusal:
    """A bulk row that was not accepted, and why."""

    index: int
    reason: str
    message: str


def _refusals(errors: list[RowError]) -> list[RowRefusal]:
    return [RowRefusal(e.index, e.reason, e.message) for e in errors]


@dataclass(frozen=True)
class BulkView:
    bulk_id: str
    channels: list[str]
    template_id: str
    # Rows read, and of those accepted.
    total: int
    accepted: int
    created_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]


@dataclass
class BulkAccepted:
    bulk_id: str
    total: int
    rows: list[tuple[int, str]]
    errors: list[RowRefusal]


@dataclass(frozen=True)
class PlannedRows:
    """A batch of bulk rows, validated: the notifications to store and the refusals."""

    notifications: list[NewNotification]
    errors: list[RowError]


@dataclass(frozen=True)
class UploadAccepted:
    bulk_id: str
    # Data rows read.
    total: int
    accepted: int

    @property
    def rejected(self) -> int:
        return self.total - self.accepted


class BulkSends:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        templates: Templates,
        idempotency: Idempotency,
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._templates = templates
        self._idempotency = idempotency

    async def send(self, *, tenant_id: str, spec: BulkSpec, rows: list[BulkRow]) -> BulkAccepted:
        """A JSON bulk: rows validated, then stored in one transaction, then one workflow."""
        plan = self._check(spec)
        content = plan.content
        if not rows or len(rows) > MAX_JSON_RECIPIENTS:
            raise invalid(
                "INVALID_ARGUMENT",
                "recipients",
                f"recipients must hold 1 to {MAX_JSON_RECIPIENTS} entries; "
                "use POST /api/v1/notifications/bulk:upload for more",
            )
        async with self._idempotency.claim(
            tenant_id=tenant_id,
            operation="bulk",
            key=spec.idempotency_key or None,
            request_hash=request_hash(BulkFingerprint(spec, rows)),
        ) as claim:
            if claim.replay_id:
                async with self._db.transaction() as session:
                    result = await self._replay(session, tenant_id, claim.replay_id)
            else:
                async with self._db.transaction() as session:
                    template = await self._load_template(session, tenant_id, content)
                bulk_id = new_id("blk")
                planned = await self._plan_rows(
                    tenant_id, bulk_id, content, template, spec.data, rows, routing=plan.routing
                )
                async with self._db.transaction(seconds=STORING_SECONDS) as session:
                    await self._create(session, bulk_id, tenant_id, content, source="json")
                    accepted = await self._store_rows(session, bulk_id, planned)
                    if accepted:
                        await outbox_store.release_bulk(
                            session, bulk_id=bulk_id, now=datetime.now(UTC)
                        )
                    await claim.completed(session, bulk_id)
                result = BulkAccepted(bulk_id, len(rows), accepted, _refusals(planned.errors))
        # A replay starts the workflow too (harmless: the workflow id is
        # derived from the bulk); the outbox row covers a first request that
        # died between commit and start, or a Temporal outage.
        self._start_soon(result.bulk_id, tenant_id, result.total, len(result.rows))
        return result

    async def upload(
        self, *, tenant_id: str, spec: BulkSpec, body: AsyncIterator[bytes]
    ) -> UploadAccepted:
        """A streamed CSV: rows are validated and stored in batches as they
        arrive, so memory stays flat; the workflow starts once the upload ends.
        The idempotency key is claimed with the hash of the parameters; the
        hash of the parameters and the body is recorded on completion."""
        plan = self._check(spec)
        body = capped(body)
        params_hash = request_hash(spec)
        body_hash = StreamHash(params_hash)
        async with self._idempotency.claim(
            tenant_id=tenant_id,
            operation="bulk_upload",
            key=spec.idempotency_key or None,
            request_hash=params_hash,
            long_running=True,
        ) as claim:
            if claim.replay_id:
                # Read to compare, store nothing.
                async for _ in body_hash.through(body):
                    pass
                claim.check_replay(body_hash.hexdigest())
                async with self._db.transaction() as session:
                    record = await store.get_bulk(
                        session, tenant_id=tenant_id, bulk_id=claim.replay_id
                    )
                assert record is not None
                uploaded = UploadAccepted(record.bulk_id, record.total, record.accepted)
            else:
                uploaded = await self._store_upload(tenant_id, spec, plan, body, body_hash, claim)
        self._start_soon(uploaded.bulk_id, tenant_id, uploaded.total, uploaded.accepted)
        return uploaded

    async def _store_upload(
        self,
        tenant_id: str,
        spec: BulkSpec,
        plan: BulkPlan,
        body: AsyncIterator[bytes],
        body_hash: StreamHash,
        claim: Claim,
    ) -> UploadAccepted:
        """Reads `body` through `body_hash`, stores its rows in batches, and
        completes the claim, with the final hash, in the last batch's transaction."""
        content = plan.content
        async with self._db.transaction() as session:
            template = await self._load_template(session, tenant_id, content)
        bulk_id = new_id("blk")
        created = False
        total = accepted = 0
        batch: list[BulkRow] = []

        async def flush(*, last: bool) -> None:
            # The bulk is created with the first batch, so that an upload
            # refused early (its header, its encoding) stores nothing.
            nonlocal created, accepted
            planned = await self._plan_rows(
                tenant_id, bulk_id, content, template, spec.data, batch, routing=plan.routing
            )
            async with self._db.transaction(seconds=STORING_SECONDS) as session:
                if not created:
                    await self._create(session, bulk_id, tenant_id, content, source="csv")
                if batch:
                    accepted += len(await self._store_rows(session, bulk_id, planned))
                if last:
                    if accepted:
                        await outbox_store.release_bulk(
                            session, bulk_id=bulk_id, now=datetime.now(UTC)
                        )
                    await claim.completed(session, bulk_id, final_hash=body_hash.hexdigest())
            created = True
            batch.clear()

        try:
            async for row in csv_rows(body_hash.through(body)):
                if total >= MAX_UPLOAD_ROWS:
                    raise invalid(
                        "INVALID_ARGUMENT", "body", f"uploads hold at most {MAX_UPLOAD_ROWS} rows"
                    )
                total += 1
                batch.append(row)
                if len(batch) >= UPLOAD_BATCH:
                    await flush(last=False)
            await flush(last=True)
        except BaseException:
            # Refused or cut off part-way: the rows stored so far would sit
            # queued forever in a bulk that is never sent. Shielded, so a
            # client that hung up still gets its partial upload removed.
            if created:
                await asyncio.shield(self._discard(bulk_id))
            raise
        return UploadAccepted(bulk_id, total, accepted)

    async def _discard(self, bulk_id: str) -> None:
        async with self._db.transaction(seconds=DISCARD_SECONDS) as session:
            await store.delete_bulk(session, bulk_id=bulk_id)
        log.info("discarded the partial upload %s", bulk_id)

    async def get(self, *, tenant_id: str, bulk_id: str) -> BulkView:
        if not looks_like_id("blk", bulk_id):
            raise not_found("bulk")
        async with self._db.transaction(snapshot=True) as session:
            record = await store.get_bulk(session, tenant_id=tenant_id, bulk_id=bulk_id)
        if record is None:
            raise not_found("bulk")
        return _bulk_view(record)

    async def page(
        self, *, tenant_id: str, page_size: int, page_token: str
    ) -> tuple[list[BulkView], str]:
        limit = check_page_size(page_size, default=20, maximum=100)
        after = decode_page_token(page_token) if page_token else None
        async with self._db.transaction(snapshot=True) as session:
            found = await store.list_bulks(
                session, tenant_id=tenant_id, after=after, limit=limit + 1
            )
        last = found[limit - 1] if len(found) > limit else None
        token = encode_page_token(last.created_at, last.bulk_id) if last else ""
        return [_bulk_view(r) for r in found[:limit]], token

    async def errors(
        self, *, tenant_id: str, bulk_id: str, page_size: int, page_token: str
    ) -> tuple[list[RowRefusal], str]:
        await self.get(tenant_id=tenant_id, bulk_id=bulk_id)
        limit = check_page_size(page_size, default=100, maximum=1000)
        after = int(str(decode_position(page_token, _is_row_index)[0])) if page_token else -1
        async with self._db.transaction() as session:
            found = await store.list_errors(session, bulk_id=bulk_id, after=after, limit=limit + 1)
        token = encode_position([found[limit - 1].index]) if len(found) > limit else ""
        return _refusals(found[:limit]), token

    def _check(self, spec: BulkSpec) -> BulkPlan:
        check_idempotency_key(spec.idempotency_key)
        check_data(spec.data, "data")
        # As for a single send: every step's channel is checked (template,
        # WhatsApp's rule, and per row the recipient field) as if all were sent.
        routing = plan_routing(channels=spec.channels, routing=spec.routing, path="")
        content = plan_content(
            channels=[c.value for c in routing.channels] if routing else spec.channels,
            subject=spec.subject,
            body=spec.body,
            template_id=spec.template_id,
        )
        return BulkPlan(content, routing)

    async def _create(
        self,
        session: AsyncSession,
        bulk_id: str,
        tenant_id: str,
        content: ContentPlan,
        *,
        source: str,
    ) -> None:
        await store.insert_bulk(
            session,
            bulk_id=bulk_id,
            tenant_id=tenant_id,
            channels=[c.value for c in content.channels],
            template_id=content.template_id,
            source=source,
            now=datetime.now(UTC),
        )

    async def _load_template(
        self, session: AsyncSession, tenant_id: str, content: ContentPlan
    ) -> LoadedTemplate | None:
        if not content.template_id:
            return None
        return await self._templates.load_for_send(
            session,
            tenant_id=tenant_id,
            template_id=content.template_id,
            channels=[c.value for c in content.channels],
            path="",
        )

    async def _plan_rows(
        self,
        tenant_id: str,
        bulk_id: str,
        content: ContentPlan,
        template: LoadedTemplate | None,
        shared_data: dict[str, Any],
        rows: Iterable[BulkRow],
        *,
        routing: RoutingPolicy | None = None,
    ) -> PlannedRows:
        """Validates each row, outside any transaction (CPU work only)."""
        notifications = []
        errors = []
        for count, row in enumerate(rows, 1):
            if count % _ROWS_BETWEEN_YIELDS == 0:
                # Validation is CPU work with no await in it; let the other
                # requests this process serves (a tenant's single send) run.
                await asyncio.sleep(0)
            try:
                recipient = plan_recipient(
                    content.channels,
                    email=row.email,
                    phone=row.phone,
                    slack_user_id=row.slack_user_id,
                    path=f"recipients[{row.index}].",
                )
                data = {**shared_data, **row.data}
                check_data(data, f"recipients[{row.index}].data")
                notifications.append(
                    build_notification(
                        tenant_id=tenant_id,
                        content=content,
                        recipient=recipient,
                        data=data,
                        template=template,
                        bulk_id=bulk_id,
                        row_index=row.index,
                        routing=routing,
                    )
                )
            except ClarionError as error:
                errors.append(RowError(row.index, error.reason, error.message))
        return PlannedRows(notifications, errors)

    async def _store_rows(
        self, session: AsyncSession, bulk_id: str, planned: PlannedRows
    ) -> list[tuple[int, str]]:
        """Stores the good rows and the refusals; returns (row, notification id) of the good."""
        good, errors = planned.notifications, planned.errors
        await notification_store.insert_notifications(session, good, now=datetime.now(UTC))
        await store.insert_errors(session, bulk_id=bulk_id, errors=errors)
        await store.add_counts(
            session, bulk_id=bulk_id, total=len(good) + len(errors), accepted=len(good)
        )
        return [(n.row_index or 0, n.notification_id) for n in good]

    async def _replay(self, session: AsyncSession, tenant_id: str, bulk_id: str) -> BulkAccepted:
        record = await store.get_bulk(session, tenant_id=tenant_id, bulk_id=bulk_id)
        assert record is not None
        rows = await store.row_notifications(session, bulk_id=bulk_id)
        errors = await store.list_errors(session, bulk_id=bulk_id, after=-1, limit=record.total)
        return BulkAccepted(bulk_id, record.total, rows, _refusals(errors))

    def _start_soon(self, bulk_id: str, tenant_id: str, rows: int, accepted: int) -> None:
        """Starts delivery after the commit, unless every row was refused."""
        if accepted:
            self._outbox.start_bulk_soon(bulk_id=bulk_id, tenant_id=tenant_id, rows=rows)


@dataclass
class BulkFingerprint:
    """What identifies a bulk request for idempotency."""

    spec: BulkSpec
    rows: list[BulkRow]
    idempotency_key: str = ""


def _is_row_index(position: list[object]) -> bool:
    # Row indexes are 0 to 999,999; anything else was not returned by us
    # (and a huge number would overflow the integer column).
    index = position[0] if len(position) == 1 else None
    return isinstance(index, int) and not isinstance(index, bool) and 0 <= index < MAX_UPLOAD_ROWS


def _bulk_view(record: store.BulkRecord) -> BulkView:
    return BulkView(
        bulk_id=record.bulk_id,
        channels=list(record.channels),
        template_id=record.template_id,
        total=record.total,
        accepted=record.accepted,
        created_at=record.created_at,
        finished_at=record.finished_at,
        counts=dict(record.counts),
    )
