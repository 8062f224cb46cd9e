"""Templates: create, version, roll out, archive, preview, and resolve the
content a templated send delivers."""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.policies import RolloutPolicy
from contracts.workflows import TemplateApprovalInput
from server.domain.channels import Channel
from server.domain.errors import ClarionError, ErrorKind, invalid, limit_reached, not_found
from server.domain.rollout import choose_version
from server.domain.templates import (
    TEMPLATE_ID,
    check_description,
    render_channel,
    to_whatsapp_positional,
    validate_template,
    whatsapp_parameters,
)
from server.services.dispatch import Outbox, approval_start
from server.services.paging import check_page_size, decode_position, encode_position
from server.store import templates as store
from server.store import tenants as tenant_store
from server.store.db import Database
from server.store.templates import TemplateRecord, VersionRecord

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Live (not archived) templates per tenant, and versions per template: far
# above what a product's messages need, and a bound on what one tenant stores.
MAX_TEMPLATES = 1_000
MAX_VERSIONS = 100


@dataclass(frozen=True)
class VersionView:
    """A template version as its tenant sees it."""

    template_id: str
    version: int
    channels: dict[str, dict[str, str]]
    variables: list[str]
    whatsapp_status: str | None
    whatsapp_reason: str
    created_at: datetime


def version_view(record: VersionRecord) -> VersionView:
    return VersionView(
        template_id=record.template_id,
        version=record.version,
        channels=record.channels,
        variables=list(record.variables),
        whatsapp_status=record.whatsapp_status,
        whatsapp_reason=record.whatsapp_reason,
        created_at=record.created_at,
    )


@dataclass(frozen=True)
class TemplateSummary:
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


@dataclass(frozen=True)
class TemplateView:
    template: TemplateSummary
    active: VersionView


def template_view(template: TemplateRecord, active: VersionRecord) -> TemplateView:
    return TemplateView(
        TemplateSummary(
            template_id=template.template_id,
            description=template.description,
            active_version=template.active_version,
            latest_version=template.latest_version,
            rollout_version=template.rollout_version,
            rollout_percent=template.rollout_percent,
            rollout_state=template.rollout_state,
            rollout_stopped_reason=template.rollout_stopped_reason,
            rollout_started_at=template.rollout_started_at,
            created_at=template.created_at,
            updated_at=template.updated_at,
        ),
        version_view(active),
    )


@dataclass(frozen=True)
class ResolvedContent:
    version: int
    # Per channel: rendered fields, or for WhatsApp the Meta template to send.
    content: dict[str, dict[str, Any]]


def whatsapp_name(tenant_id: str, template_id: str, version: int) -> str:
    """The name a version is submitted to Meta under: unique across tenants
    sharing one WhatsApp Business Account, in Meta's alphabet (lower case,
    digits, underscores). The hash covers the exact template id, because
    "order-update" and "order_update" read the same once `-` becomes `_`."""
    owner = hashlib.sha256(f"{tenant_id}\0{template_id}".encode()).hexdigest()[:12]
    return f"c{owner}_{template_id.replace('-', '_')}_v{version}"


class Templates:
    def __init__(self, db: Database, outbox: Outbox, policy: RolloutPolicy) -> None:
        self._db = db
        self._outbox = outbox
        self._policy = policy

    async def create(
        self, *, tenant_id: str, template_id: str, description: str, channels: dict[str, Any]
    ) -> TemplateView:
        if not TEMPLATE_ID.fullmatch(template_id):
            raise invalid(
                "INVALID_ARGUMENT",
                "template_id",
                "template_id must be 1 to 64 characters of a-z, 0-9, _ and -",
            )
        check_description(description)
        variables = validate_template(channels)
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            if await store.exists(session, tenant_id=tenant_id, template_id=template_id):
                raise ClarionError(
                    ErrorKind.ALREADY_EXISTS,
                    "TEMPLATE_EXISTS",
                    f"template {template_id!r} already exists; "
                    f"add a version with POST /api/v1/templates/{template_id}/versions",
                )
            # The tenant's row is locked, so concurrent creates count one at a time.
            await tenant_store.lock_tenant(session, tenant_id=tenant_id)
            if await store.count_live(session, tenant_id=tenant_id) >= MAX_TEMPLATES:
                raise limit_reached(
                    "TEMPLATE_LIMIT",
                    f"a tenant may have at most {MAX_TEMPLATES} templates; "
                    "archive unused ones with DELETE /api/v1/templates/{template_id}",
                )
            await store.insert_template(
                session,
                tenant_id=tenant_id,
                template_id=template_id,
                description=description,
                now=now,
            )
            version, approval = await self._add_version(
                session, tenant_id, template_id, 1, channels, variables, now
            )
            template = await store.get_template(
                session, tenant_id=tenant_id, template_id=template_id
            )
        assert template is not None
        if approval:
            self._outbox.start_approval_soon(approval)
        return template_view(template, version)

    async def create_version(
        self, *, tenant_id: str, template_id: str, channels: dict[str, Any]
    ) -> VersionView:
        variables = validate_template(channels)
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            template = await self._live(session, tenant_id, template_id, for_update=True)
            if template.latest_version >= MAX_VERSIONS:
                raise limit_reached(
                    "VERSION_LIMIT",
                    f"template {template_id!r} has {MAX_VERSIONS} versions, the most a "
                    "template may have; create a new template for further changes",
                )
            number = template.latest_version + 1
            version, approval = await self._add_version(
                session, tenant_id, template_id, number, channels, variables, now
            )
            await store.update_template(
                session, tenant_id=tenant_id, template_id=template_id, now=now,
                latest_version=number,
            )  # fmt: skip
        if approval:
            self._outbox.start_approval_soon(approval)
        return version_view(version)

    async def _add_version(
        self,
        session: AsyncSession,
        tenant_id: str,
        template_id: str,
        number: int,
        channels: dict[str, Any],
        variables: list[str],
        now: datetime,
    ) -> tuple[VersionRecord, TemplateApprovalInput | None]:
        """The new version, and the Meta review to start once it is committed
        (stored in the outbox in this transaction, so no outage loses it)."""
        whatsapp = channels.get(Channel.WHATSAPP.value)
        name = whatsapp_name(tenant_id, template_id, number) if whatsapp else None
        version = await store.insert_version(
            session,
            tenant_id=tenant_id,
            template_id=template_id,
            version=number,
            channels=channels,
            variables=variables,
            whatsapp_name=name,
            now=now,
        )
        if not (whatsapp and name):
            return version, None
        body, names = to_whatsapp_positional(whatsapp["body"])
        approval = TemplateApprovalInput(
            whatsapp_name=name,
            language=whatsapp["language"],
            body=body,
            examples=[f"<{n}>" for n in names],
        )
        await self._outbox.add(session, [approval_start(approval)])
        return version, approval

    async def get(self, *, tenant_id: str, template_id: str) -> TemplateView:
        async with self._db.transaction() as session:
            template = await self._live(session, tenant_id, template_id)
            active = await self._version(session, tenant_id, template_id, template.active_version)
        return template_view(template, active)

    async def list_templates(
        self, *, tenant_id: str, page_size: int, page_token: str
    ) -> tuple[list[TemplateView], str]:
        limit = check_page_size(page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        after = str(decode_position(page_token, _is_template_id)[0]) if page_token else ""
        async with self._db.transaction() as session:
            records = await store.list_templates(
                session, tenant_id=tenant_id, after=after, limit=limit + 1
            )
            views = [
                template_view(
                    t, await self._version(session, tenant_id, t.template_id, t.active_version)
                )
                for t in records[:limit]
            ]
        token = encode_position([records[limit - 1].template_id]) if len(records) > limit else ""
        return views, token

    async def get_version(self, *, tenant_id: str, template_id: str, version: int) -> VersionView:
        async with self._db.transaction() as session:
            await self._live(session, tenant_id, template_id)
            return version_view(await self._version(session, tenant_id, template_id, version))

    async def rollout(
        self, *, tenant_id: str, template_id: str, version: int, percent: int
    ) -> TemplateView:
        if not 0 <= percent <= 100:
            raise invalid("INVALID_ARGUMENT", "percent", "percent must be 0 to 100")
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            template = await self._live(session, tenant_id, template_id, for_update=True)
            target = await self._version(session, tenant_id, template_id, version)
            changes: dict[str, Any]
            if percent == 100:
                # Promotion (or rollback to an older version): it becomes the active one.
                changes = {
                    "active_version": target.version,
                    "rollout_version": None,
                    "rollout_percent": 0,
                    "rollout_state": "none",
                    "rollout_stopped_reason": "",
                }
            elif percent == 0 or version == template.active_version:
                changes = {"rollout_version": None, "rollout_percent": 0, "rollout_state": "none"}
            else:
                restarted = (
                    template.rollout_version != version or template.rollout_state != "running"
                )
                changes = {
                    "rollout_version": version,
                    "rollout_percent": percent,
                    "rollout_state": "running",
                    "rollout_stopped_reason": "",
                }
                if restarted:
                    changes["rollout_started_at"] = now
            await store.update_template(
                session, tenant_id=tenant_id, template_id=template_id, now=now, **changes
            )
            updated = await self._live(session, tenant_id, template_id)
            active = await self._version(session, tenant_id, template_id, updated.active_version)
        return template_view(updated, active)

    async def delete(self, *, tenant_id: str, template_id: str) -> TemplateView:
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            template = await self._live(session, tenant_id, template_id, for_update=True)
            active = await self._version(session, tenant_id, template_id, template.active_version)
            await store.update_template(
                session, tenant_id=tenant_id, template_id=template_id, now=now, archived_at=now
            )
        return template_view(template, active)

    async def preview(
        self, *, tenant_id: str, template_id: str, data: dict[str, Any], channels: list[str]
    ) -> tuple[int, dict[str, dict[str, str]]]:
        view = await self.get(tenant_id=tenant_id, template_id=template_id)
        wanted = channels or list(view.active.channels)
        rendered = {}
        for channel in wanted:
            fields = view.active.channels.get(channel)
            if fields is None:
                raise _missing_channel(template_id, channel, view.active, "channels")
            rendered[channel] = render_channel(channel, fields, data, data_path="data")
        return view.active.version, rendered

    async def load_for_send(
        self,
        session: AsyncSession,
        *,
        tenant_id: str,
        template_id: str,
        channels: list[str],
        path: str = "notification.",
    ) -> "LoadedTemplate":
        """The template's live versions, checked once for a send or a whole
        bulk: it exists, has content for every channel, and WhatsApp content is
        approved. Rendering per recipient then needs no database."""
        template = await store.get_template(session, tenant_id=tenant_id, template_id=template_id)
        if template is None:
            raise invalid(
                "TEMPLATE_NOT_FOUND",
                f"{path}template_id",
                f"template {template_id!r} does not exist; create it with POST /api/v1/templates",
            )
        active = await self._version(session, tenant_id, template_id, template.active_version)
        _check_sendable(template_id, active, channels, path)
        candidate = None
        if template.rollout_state == "running" and template.rollout_version is not None:
            candidate = await self._version(
                session, tenant_id, template_id, template.rollout_version
            )
            try:
                _check_sendable(template_id, candidate, channels, path)
            except ClarionError:
                # The new version cannot serve these channels yet: everyone gets the active one.
                candidate = None
        return LoadedTemplate(template, active, candidate)

    async def _live(
        self, session: AsyncSession, tenant_id: str, template_id: str, for_update: bool = False
    ) -> TemplateRecord:
        template = await store.get_template(
            session, tenant_id=tenant_id, template_id=template_id, for_update=for_update
        )
        if template is None:
            raise not_found("template")
        return template

    async def _version(
        self, session: AsyncSession, tenant_id: str, template_id: str, version: int
    ) -> VersionRecord:
        record = await store.get_version(
            session, tenant_id=tenant_id, template_id=template_id, version=version
        )
        if record is None:
            raise not_found("template version")
        return record


@dataclass(frozen=True)
class LoadedTemplate:
    template: TemplateRecord
    active: VersionRecord
    # The version under rollout, when it can serve the send's channels.
    candidate: VersionRecord | None

    def render(
        self, channels: list[str], data: dict[str, Any], recipient_key: str
    ) -> ResolvedContent:
        """Renders each channel for one recipient, with the version the
        recipient's sticky bucket picks."""
        t = self.template
        number = choose_version(
            template_id=t.template_id,
            recipient_key=recipient_key,
            active_version=t.active_version,
            rollout_version=self.candidate.version if self.candidate else None,
            rollout_percent=t.rollout_percent,
        )
        version = (
            self.candidate if self.candidate and number == self.candidate.version else self.active
        )
        content: dict[str, dict[str, Any]] = {}
        for channel in channels:
            fields = version.channels[channel]
            rendered: dict[str, Any] = render_channel(channel, fields, data)
            if channel == Channel.WHATSAPP.value:
                _, names = to_whatsapp_positional(fields["body"])
                rendered = {
                    "body": rendered["body"],
                    "whatsapp_name": version.whatsapp_name,
                    "language": fields["language"],
                    "parameters": whatsapp_parameters(names, data),
                }
            content[channel] = rendered
        return ResolvedContent(version.version, content)


def _check_sendable(
    template_id: str, version: VersionRecord, channels: list[str], path: str
) -> None:
    for channel in channels:
        if channel not in version.channels:
            raise _missing_channel(template_id, channel, version, f"{path}channels")
    if Channel.WHATSAPP.value in channels and version.whatsapp_status != "approved":
        raise ClarionError(
            ErrorKind.FAILED_PRECONDITION,
            "TEMPLATE_NOT_APPROVED",
            f"WhatsApp content of template {template_id!r} version {version.version} is "
            f"{version.whatsapp_status or 'not submitted'}"
            + (f" ({version.whatsapp_reason})" if version.whatsapp_reason else "")
            + "; it can be sent once Meta approves it",
        )


def _missing_channel(
    template_id: str, channel: str, version: VersionRecord | VersionView, field: str
) -> ClarionError:
    has = ", ".join(sorted(version.channels)) or "none"
    return invalid(
        "TEMPLATE_CHANNEL_MISSING",
        field,
        f"template {template_id!r} version {version.version} has no content for channel "
        f"{channel}; it has: {has}",
    )


def _is_template_id(position: list[object]) -> bool:
    return (
        len(position) == 1
        and isinstance(position[0], str)
        and TEMPLATE_ID.fullmatch(position[0]) is not None
    )
