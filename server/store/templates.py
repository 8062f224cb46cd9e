"""Templates and their versions. Functions never commit: the caller owns the
transaction. Every query filters by tenant."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.tables import deliveries, notifications, template_versions, templates


@dataclass(frozen=True)
class VersionRecord:
    template_id: str
    version: int
    channels: dict[str, dict[str, str]]
    variables: list[str]
    whatsapp_name: str | None
    whatsapp_status: str | None
    whatsapp_reason: str
    created_at: datetime


@dataclass(frozen=True)
class TemplateRecord:
    tenant_id: str
    template_id: str
    description: str
    active_version: int
    latest_version: int
    rollout_version: int | None
    rollout_percent: int
    rollout_state: str
    rollout_stopped_reason: str
    rollout_started_at: datetime | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


def _template(row: Row[Any]) -> TemplateRecord:
    return TemplateRecord(
        tenant_id=row.tenant_id,
        template_id=row.template_id,
        description=row.description,
        active_version=row.active_version,
        latest_version=row.latest_version,
        rollout_version=row.rollout_version,
        rollout_percent=row.rollout_percent,
        rollout_state=row.rollout_state,
        rollout_stopped_reason=row.rollout_stopped_reason,
        rollout_started_at=row.rollout_started_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        archived_at=row.archived_at,
    )


def _version(row: Row[Any]) -> VersionRecord:
    return VersionRecord(
        template_id=row.template_id,
        version=row.version,
        channels=dict(row.channels),
        variables=list(row.variables),
        whatsapp_name=row.whatsapp_name,
        whatsapp_status=row.whatsapp_status,
        whatsapp_reason=row.whatsapp_reason,
        created_at=row.created_at,
    )


async def exists(session: AsyncSession, *, tenant_id: str, template_id: str) -> bool:
    """True if the id was ever used by this tenant, archived or not."""
    row = await session.execute(
        select(templates.c.template_id).where(
            templates.c.tenant_id == tenant_id, templates.c.template_id == template_id
        )
    )
    return row.first() is not None


async def count_live(session: AsyncSession, *, tenant_id: str) -> int:
    """The tenant's templates that are not archived."""
    count = await session.scalar(
        select(func.count())
        .select_from(templates)
        .where(templates.c.tenant_id == tenant_id, templates.c.archived_at.is_(None))
    )
    return int(count or 0)


async def insert_template(
    session: AsyncSession, *, tenant_id: str, template_id: str, description: str, now: datetime
) -> None:
    await session.execute(
        insert(templates).values(
            tenant_id=tenant_id,
            template_id=template_id,
            description=description,
            active_version=1,
            latest_version=1,
            created_at=now,
            updated_at=now,
        )
    )


async def insert_version(
    session: AsyncSession,
    *,
    tenant_id: str,
    template_id: str,
    version: int,
    channels: dict[str, dict[str, str]],
    variables: list[str],
    whatsapp_name: str | None,
    now: datetime,
) -> VersionRecord:
    await session.execute(
        insert(template_versions).values(
            tenant_id=tenant_id,
            template_id=template_id,
            version=version,
            channels=channels,
            variables=variables,
            whatsapp_name=whatsapp_name,
            whatsapp_status="pending" if whatsapp_name else None,
            created_at=now,
        )
    )
    return VersionRecord(
        template_id, version, channels, variables, whatsapp_name,
        "pending" if whatsapp_name else None, "", now,
    )  # fmt: skip


async def get_template(
    session: AsyncSession, *, tenant_id: str, template_id: str, for_update: bool = False
) -> TemplateRecord | None:
    """A live (not archived) template."""
    query = select(templates).where(
        templates.c.tenant_id == tenant_id,
        templates.c.template_id == template_id,
        templates.c.archived_at.is_(None),
    )
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return _template(row) if row else None


async def list_templates(
    session: AsyncSession, *, tenant_id: str, after: str, limit: int
) -> list[TemplateRecord]:
    rows = await session.execute(
        select(templates)
        .where(
            templates.c.tenant_id == tenant_id,
            templates.c.archived_at.is_(None),
            templates.c.template_id > after,
        )
        .order_by(templates.c.template_id)
        .limit(limit)
    )
    return [_template(row) for row in rows]


async def get_version(
    session: AsyncSession, *, tenant_id: str, template_id: str, version: int
) -> VersionRecord | None:
    row = (
        await session.execute(
            select(template_versions).where(
                template_versions.c.tenant_id == tenant_id,
                template_versions.c.template_id == template_id,
                template_versions.c.version == version,
            )
        )
    ).first()
    return _version(row) if row else None


async def update_template(
    session: AsyncSession, *, tenant_id: str, template_id: str, now: datetime, **values: Any
) -> None:
    """Sets the named template columns; callers pass only known column names."""
    allowed = {
        "active_version",
        "latest_version",
        "rollout_version",
        "rollout_percent",
        "rollout_state",
        "rollout_stopped_reason",
        "rollout_started_at",
        "archived_at",
    }
    unknown = set(values) - allowed
    assert not unknown, f"not template state columns: {unknown}"
    await session.execute(
        update(templates)
        .where(templates.c.tenant_id == tenant_id, templates.c.template_id == template_id)
        .values(updated_at=now, **values)
    )


async def set_whatsapp_review(
    session: AsyncSession, *, whatsapp_name: str, status: str, reason: str
) -> bool:
    """Records Meta's verdict on a submitted template; False if the name is not ours."""
    result = await session.execute(
        update(template_versions)
        .where(template_versions.c.whatsapp_name == whatsapp_name)
        .values(whatsapp_status=status, whatsapp_reason=reason)
        .returning(template_versions.c.version)
    )
    return result.first() is not None


@dataclass(frozen=True)
class VersionOutcomes:
    final: int
    failed: int


async def rollout_outcomes(
    session: AsyncSession, *, tenant_id: str, template_id: str, since: datetime
) -> dict[int, VersionOutcomes]:
    """Final and failed deliveries per template version since `since`."""
    rows = await session.execute(
        select(
            notifications.c.template_version,
            func.count().filter(deliveries.c.status.in_(("delivered", "failed"))),
            func.count().filter(deliveries.c.status == "failed"),
        )
        .select_from(
            notifications.join(
                deliveries,
                and_(
                    deliveries.c.notification_id == notifications.c.id,
                    deliveries.c.tenant_id == tenant_id,
                ),
            )
        )
        .where(
            notifications.c.tenant_id == tenant_id,
            notifications.c.template_id == template_id,
            notifications.c.created_at >= since,
        )
        .group_by(notifications.c.template_version)
    )
    return {version: VersionOutcomes(final, failed) for version, final, failed in rows}
