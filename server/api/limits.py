"""What each RPC costs against its tenant's limits, and metering one call."""

from collections.abc import AsyncIterator
from typing import Any

from server.domain.limits import Charge, LimitName, TenantLimits
from server.services.limits import Admission, Limiter

_NOTIFICATIONS = "/clarion.v1.NotificationService/"
SEND = _NOTIFICATIONS + "SendNotification"
SEND_BULK = _NOTIFICATIONS + "SendBulk"
UPLOAD_BULK = _NOTIFICATIONS + "UploadBulk"
SEND_METHODS = frozenset({SEND, SEND_BULK, UPLOAD_BULK})
UPDATE_DEFAULT_ROUTING = _NOTIFICATIONS + "UpdateDefaultRouting"
_WRITES = frozenset(
    {
        "/clarion.v1.TemplateService/CreateTemplate",
        "/clarion.v1.TemplateService/CreateTemplateVersion",
        "/clarion.v1.TemplateService/RolloutTemplate",
        "/clarion.v1.TemplateService/DeleteTemplate",
        "/clarion.v1.TenantService/CreateApiKey",
        "/clarion.v1.TenantService/RevokeApiKey",
        "/clarion.v1.TeamService/CreateInvitation",
        "/clarion.v1.TeamService/CancelInvitation",
        "/clarion.v1.TeamService/RemoveMember",
        UPDATE_DEFAULT_ROUTING,
        "/clarion.v1.WebhookService/CreateWebhook",
        "/clarion.v1.WebhookService/DeleteWebhook",
        "/clarion.v1.WebhookService/RotateWebhookSecret",
        "/clarion.v1.WebhookService/EnableWebhook",
        "/clarion.v1.WebhookService/ReplayWebhookEvent",
        "/clarion.v1.AlertService/CreateAlertRule",
        "/clarion.v1.AlertService/DeleteAlertRule",
        "/clarion.v1.AlertService/DisableAlertRule",
        "/clarion.v1.AlertService/EnableAlertRule",
    }
)


def charge_for(method: str, request: Any) -> Charge:
    """The charge of a unary call, from its request. A routed send counts
    toward every channel it may try."""
    if method == SEND:
        return Charge(LimitName.SEND, 1, _channels(request.notification))
    if method == SEND_BULK:
        return Charge(LimitName.BULK_ROWS, max(1, len(request.recipients)), _channels(request))
    if method in _WRITES:
        return Charge(LimitName.WRITES, 1)
    return Charge(LimitName.READS, 1)


def _channels(message: Any) -> list[str]:
    return list(message.channels) or list(message.routing.channels)


def wants_default_routing(method: str, request: Any) -> bool:
    """A high-priority single send naming neither channels nor routing: it
    counts toward the channels of the tenant's default routing."""
    if method != SEND:
        return False
    notification = request.notification
    return (
        notification.priority == "high"
        and not notification.channels
        and not notification.HasField("routing")
    )


def accepted_by(method: str, response: Any) -> int:
    """How many notifications a successful call created."""
    if method == SEND:
        return 1
    if method in (SEND_BULK, UPLOAD_BULK):
        return int(response.accepted)
    return 0


class Meter:
    """Charges one call of `tenant_id` and afterwards counts what it really
    created toward today's usage."""

    def __init__(self, limiter: Limiter, tenant_id: str, limits: TenantLimits) -> None:
        self._limiter = limiter
        self._tenant_id = tenant_id
        self._limits = limits
        self._admissions: list[Admission] = []

    async def admit(self, charge: Charge, *, default_routing: bool = False) -> None:
        """With `default_routing`, the charge counts toward the channels of
        the tenant's default routing (none when it has none: the send fails)."""
        if default_routing:
            channels = await self._limiter.default_routing_channels(self._tenant_id)
            charge = Charge(charge.limit, charge.cost, channels)
        admission = await self._limiter.admit(self._tenant_id, self._limits, charge)
        if admission:
            self._admissions.append(admission)

    async def upload(self, messages: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """An upload's messages, each charged about one bulk row per line as
        it arrives; over the rate the stream waits instead of failing."""
        burst = self._limits.rate(LimitName.BULK_ROWS).burst
        channels: list[str] = []
        async for message in messages:
            channels = channels or (
                [message.channel] if message.channel else list(message.routing.channels)
            )
            lines = message.body.data.count(b"\n")
            while lines > 0:
                part = min(lines, burst)
                admission = await self._limiter.throttle(
                    self._tenant_id, self._limits, Charge(LimitName.BULK_ROWS, part, channels)
                )
                if admission:
                    self._admissions.append(admission)
                lines -= part
            yield message

    async def settle(self, accepted: int) -> None:
        if not self._admissions:
            return
        first = self._admissions[0]
        charged = sum(a.charged for a in self._admissions)
        await self._limiter.settle(
            Admission(first.tenant_id, first.day, first.channels, charged), accepted
        )
