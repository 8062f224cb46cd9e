"""TeamService: proto ⇄ service mapping for members, invitations and the audit log."""

from clarion.v1 import team_service_pb2, team_service_pb2_grpc

from server.api.auth import current_caller
from server.api.servicers import Context, timestamp_message
from server.services.audit import AuditLog
from server.services.team import InvitationView, Team


def _invitation_message(view: InvitationView) -> team_service_pb2.Invitation:
    return team_service_pb2.Invitation(
        invitation_id=view.invitation_id,
        email=view.email,
        role=view.role.value,
        created_at=timestamp_message(view.created_at),
        expires_at=timestamp_message(view.expires_at),
        notification_id=view.notification_id,
    )


class TeamServicer(team_service_pb2_grpc.TeamServiceServicer):
    def __init__(self, team: Team, audit: AuditLog) -> None:
        self._team = team
        self._audit = audit

    async def ListMembers(
        self, request: team_service_pb2.ListMembersRequest, context: Context
    ) -> team_service_pb2.ListMembersResponse:
        members, invitations = await self._team.members(tenant_id=current_caller().tenant_id)
        return team_service_pb2.ListMembersResponse(
            members=[
                team_service_pb2.Member(
                    user_id=m.user_id,
                    email=m.email,
                    role=m.role.value,
                    created_at=timestamp_message(m.created_at),
                )
                for m in members
            ],
            invitations=[_invitation_message(i) for i in invitations],
        )

    async def CreateInvitation(
        self, request: team_service_pb2.CreateInvitationRequest, context: Context
    ) -> team_service_pb2.Invitation:
        view = await self._team.invite(
            actor=current_caller().actor, email=request.email, role=request.role
        )
        return _invitation_message(view)

    async def CancelInvitation(
        self, request: team_service_pb2.CancelInvitationRequest, context: Context
    ) -> team_service_pb2.CancelInvitationResponse:
        await self._team.cancel_invitation(
            actor=current_caller().actor, invitation_id=request.invitation_id
        )
        return team_service_pb2.CancelInvitationResponse()

    async def RemoveMember(
        self, request: team_service_pb2.RemoveMemberRequest, context: Context
    ) -> team_service_pb2.RemoveMemberResponse:
        await self._team.remove_member(actor=current_caller().actor, user_id=request.user_id)
        return team_service_pb2.RemoveMemberResponse()

    async def ListAuditLog(
        self, request: team_service_pb2.ListAuditLogRequest, context: Context
    ) -> team_service_pb2.ListAuditLogResponse:
        entries, token = await self._audit.list(
            tenant_id=current_caller().tenant_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return team_service_pb2.ListAuditLogResponse(
            entries=[
                team_service_pb2.AuditEntry(
                    at=timestamp_message(e.at),
                    actor_email=e.actor_email,
                    actor_api_key=e.actor_api_key,
                    action=e.action,
                    target=e.target,
                    detail=e.detail,
                )
                for e in entries
            ],
            next_page_token=token,
        )
