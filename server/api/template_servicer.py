"""TemplateService: proto ⇄ domain mapping only."""

from typing import Any, TypeAlias

import grpc
from clarion.v1 import template_service_pb2, template_service_pb2_grpc
from google.protobuf import json_format

from server.api.auth import current_caller
from server.api.servicers import timestamp_message
from server.services.audit import AuditLog
from server.services.templates import Templates, TemplateView, VersionView

Context: TypeAlias = grpc.aio.ServicerContext


def channels_to_dict(channels: template_service_pb2.TemplateChannels) -> dict[str, Any]:
    """The channels the tenant gave, as {"sms": {"body": ...}, ...}."""
    return json_format.MessageToDict(channels, preserving_proto_field_name=True)


def _channels_message(channels: dict[str, Any]) -> template_service_pb2.TemplateChannels:
    return json_format.ParseDict(channels, template_service_pb2.TemplateChannels())


def _approval(version: VersionView) -> template_service_pb2.WhatsAppApproval | None:
    if not version.whatsapp_status:
        return None
    return template_service_pb2.WhatsAppApproval(
        status=version.whatsapp_status, reason=version.whatsapp_reason
    )


def version_message(version: VersionView) -> template_service_pb2.TemplateVersion:
    return template_service_pb2.TemplateVersion(
        template_id=version.template_id,
        version=version.version,
        channels=_channels_message(version.channels),
        variables=version.variables,
        whatsapp_approval=_approval(version),
        created_at=timestamp_message(version.created_at),
    )


def template_message(view: TemplateView) -> template_service_pb2.Template:
    t = view.template
    rollout = None
    if t.rollout_version is not None:
        rollout = template_service_pb2.Rollout(
            version=t.rollout_version,
            percent=t.rollout_percent,
            state=t.rollout_state,
            stopped_reason=t.rollout_stopped_reason,
            started_at=timestamp_message(t.rollout_started_at),
        )
    return template_service_pb2.Template(
        template_id=t.template_id,
        description=t.description,
        version=t.active_version,
        channels=_channels_message(view.active.channels),
        variables=view.active.variables,
        latest_version=t.latest_version,
        rollout=rollout,
        whatsapp_approval=_approval(view.active),
        created_at=timestamp_message(t.created_at),
        updated_at=timestamp_message(t.updated_at),
    )


class TemplateServicer(template_service_pb2_grpc.TemplateServiceServicer):
    def __init__(self, templates: Templates, audit: AuditLog) -> None:
        self._templates = templates
        self._audit = audit

    async def CreateTemplate(
        self, request: template_service_pb2.CreateTemplateRequest, context: Context
    ) -> template_service_pb2.Template:
        channels = channels_to_dict(request.channels)
        view = await self._templates.create(
            tenant_id=current_caller().tenant_id,
            template_id=request.template_id,
            description=request.description,
            channels=channels,
        )
        await self._audit.record(
            current_caller().actor,
            "template.created",
            request.template_id,
            f"channels {', '.join(sorted(channels))}",
        )
        return template_message(view)

    async def GetTemplate(
        self, request: template_service_pb2.GetTemplateRequest, context: Context
    ) -> template_service_pb2.Template:
        view = await self._templates.get(
            tenant_id=current_caller().tenant_id, template_id=request.template_id
        )
        return template_message(view)

    async def ListTemplates(
        self, request: template_service_pb2.ListTemplatesRequest, context: Context
    ) -> template_service_pb2.ListTemplatesResponse:
        views, token = await self._templates.list_templates(
            tenant_id=current_caller().tenant_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return template_service_pb2.ListTemplatesResponse(
            templates=[template_message(v) for v in views], next_page_token=token
        )

    async def CreateTemplateVersion(
        self, request: template_service_pb2.CreateTemplateVersionRequest, context: Context
    ) -> template_service_pb2.TemplateVersion:
        version = await self._templates.create_version(
            tenant_id=current_caller().tenant_id,
            template_id=request.template_id,
            channels=channels_to_dict(request.channels),
        )
        await self._audit.record(
            current_caller().actor,
            "template.version_created",
            request.template_id,
            f"version {version.version}",
        )
        return version_message(version)

    async def GetTemplateVersion(
        self, request: template_service_pb2.GetTemplateVersionRequest, context: Context
    ) -> template_service_pb2.TemplateVersion:
        version = await self._templates.get_version(
            tenant_id=current_caller().tenant_id,
            template_id=request.template_id,
            version=request.version,
        )
        return version_message(version)

    async def RolloutTemplate(
        self, request: template_service_pb2.RolloutTemplateRequest, context: Context
    ) -> template_service_pb2.Template:
        view = await self._templates.rollout(
            tenant_id=current_caller().tenant_id,
            template_id=request.template_id,
            version=request.version,
            percent=request.percent,
        )
        await self._audit.record(
            current_caller().actor,
            "template.rollout",
            request.template_id,
            f"version {request.version} at {request.percent}%",
        )
        return template_message(view)

    async def DeleteTemplate(
        self, request: template_service_pb2.DeleteTemplateRequest, context: Context
    ) -> template_service_pb2.Template:
        view = await self._templates.delete(
            tenant_id=current_caller().tenant_id, template_id=request.template_id
        )
        await self._audit.record(current_caller().actor, "template.deleted", request.template_id)
        return template_message(view)

    async def PreviewTemplate(
        self, request: template_service_pb2.PreviewTemplateRequest, context: Context
    ) -> template_service_pb2.PreviewTemplateResponse:
        version, rendered = await self._templates.preview(
            tenant_id=current_caller().tenant_id,
            template_id=request.template_id,
            data=json_format.MessageToDict(request.data),
            channels=list(request.channels),
        )
        return template_service_pb2.PreviewTemplateResponse(
            version=version,
            rendered=[
                template_service_pb2.RenderedChannel(
                    channel=channel,
                    subject=fields.get("subject", ""),
                    body=fields.get("body", ""),
                    html_body=fields.get("html_body", ""),
                )
                for channel, fields in rendered.items()
            ],
        )
