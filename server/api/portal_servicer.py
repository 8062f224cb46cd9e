"""The portal's session methods: proto ⇄ service mapping, and the cookie."""

from datetime import datetime

from clarion.v1 import portal_service_pb2, portal_service_pb2_grpc

from server.api.auth import current_caller
from server.api.cookies import clear_session_cookie, client_address, set_session_cookie
from server.api.servicers import Context, timestamp_message
from server.services.portal import LoggedIn, Portal, PortalUser
from server.services.sandbox_inbox import SandboxInbox


def session_message(csrf_token: str, user: PortalUser) -> portal_service_pb2.PortalSession:
    return portal_service_pb2.PortalSession(
        csrf_token=csrf_token,
        user=portal_service_pb2.PortalUser(
            user_id=user.user_id, email=user.email, role=user.role.value
        ),
        tenant=portal_service_pb2.PortalTenant(tenant_id=user.tenant_id, name=user.tenant_name),
    )


async def _logged_in(context: Context, done: LoggedIn) -> portal_service_pb2.PortalSession:
    await set_session_cookie(context, done.session)
    return session_message(done.session.csrf_token, done.user)


class PortalServicer(portal_service_pb2_grpc.PortalServiceServicer):
    def __init__(self, portal: Portal, inbox: SandboxInbox) -> None:
        self._portal = portal
        self._inbox = inbox

    async def Login(
        self, request: portal_service_pb2.LoginRequest, context: Context
    ) -> portal_service_pb2.PortalSession:
        done = await self._portal.login(
            email=request.email,
            password=request.password,
            address=client_address(context.invocation_metadata() or ()),
        )
        return await _logged_in(context, done)

    async def Logout(
        self, request: portal_service_pb2.LogoutRequest, context: Context
    ) -> portal_service_pb2.LogoutResponse:
        session = current_caller().session
        assert session is not None  # SESSION_ONLY: the interceptor saw to it
        await self._portal.logout(session_id=session.session_id)
        await clear_session_cookie(context)
        return portal_service_pb2.LogoutResponse()

    async def GetSession(
        self, request: portal_service_pb2.GetSessionRequest, context: Context
    ) -> portal_service_pb2.PortalSession:
        session = current_caller().session
        assert session is not None
        return session_message(session.csrf_token, session.user)

    async def AcceptInvitation(
        self, request: portal_service_pb2.AcceptInvitationRequest, context: Context
    ) -> portal_service_pb2.PortalSession:
        done = await self._portal.accept_invitation(token=request.token, password=request.password)
        return await _logged_in(context, done)

    async def ListSandboxMessages(
        self, request: portal_service_pb2.ListSandboxMessagesRequest, context: Context
    ) -> portal_service_pb2.ListSandboxMessagesResponse:
        caller = current_caller()
        found = await self._inbox.messages(
            tenant_id=caller.tenant_id, role=caller.role, notification_id=request.notification_id
        )
        return portal_service_pb2.ListSandboxMessagesResponse(
            messages=[
                portal_service_pb2.SandboxMessage(
                    channel=m.channel,
                    to=m.to,
                    subject=m.subject,
                    body=m.body,
                    received_at=timestamp_message(datetime.fromisoformat(m.received_at))
                    if m.received_at
                    else None,
                    provider_message_id=m.provider_message_id,
                    notification_id=m.notification_id,
                )
                for m in found
            ]
        )
