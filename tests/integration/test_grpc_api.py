"""Internal services call the same operations over native gRPC."""

from collections.abc import Iterator

import grpc
import pytest
from clarion.v1 import (
    channel_service_pb2,
    channel_service_pb2_grpc,
    notification_service_pb2,
    notification_service_pb2_grpc,
    tenant_service_pb2,
    tenant_service_pb2_grpc,
)
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from runner.stack import Stack
from tests.conftest import Tenant


@pytest.fixture(scope="module")
def channel(stack: Stack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.grpc}") as ch:
        yield ch


def test_health_and_reflection_are_served(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "clarion.v1.NotificationService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    [reply] = list(
        stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    )
    names = {s.name for s in reply.list_services_response.service}
    assert {
        "clarion.v1.NotificationService",
        "clarion.v1.ChannelService",
        "clarion.v1.TenantService",
        "grpc.health.v1.Health",
    } <= names


def test_send_and_get_over_grpc(channel: grpc.Channel, tenant: Tenant) -> None:
    metadata = (("x-api-key", tenant.api_key),)
    notifications = notification_service_pb2_grpc.NotificationServiceStub(channel)
    accepted = notifications.SendNotification(
        notification_service_pb2.SendNotificationRequest(
            recipient=notification_service_pb2.Recipient(phone="+14155550123"),
            notification=notification_service_pb2.NotificationContent(
                channels=["sms"], body="from an internal service"
            ),
        ),
        metadata=metadata,
    )
    assert accepted.status == "queued"
    fetched = notifications.GetNotification(
        notification_service_pb2.GetNotificationRequest(notification_id=accepted.notification_id),
        metadata=metadata,
    )
    assert fetched.notification_id == accepted.notification_id
    assert list(fetched.channels) == ["sms"]
    # The JSON API sees the same notification.
    assert tenant.get(f"/api/v1/notifications/{accepted.notification_id}").status_code == 200


def test_errors_carry_error_info_and_field_violations(
    channel: grpc.Channel, tenant: Tenant
) -> None:
    notifications = notification_service_pb2_grpc.NotificationServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        notifications.SendNotification(
            notification_service_pb2.SendNotificationRequest(
                recipient=notification_service_pb2.Recipient(phone="+14155550123"),
                notification=notification_service_pb2.NotificationContent(channels=["whatsapp"]),
            ),
            metadata=(("x-api-key", tenant.api_key),),
        )
    error = caught.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain) == ("TEMPLATE_REQUIRED", "clarion")
    bad_request = error_details_pb2.BadRequest()
    assert status.details[1].Unpack(bad_request)
    assert bad_request.field_violations[0].field == "notification.template_id"


def test_calls_without_a_key_are_unauthenticated(channel: grpc.Channel) -> None:
    stub = channel_service_pb2_grpc.ChannelServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetChannelCapabilities(channel_service_pb2.GetChannelCapabilitiesRequest())
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_signup_over_grpc_needs_no_key(channel: grpc.Channel) -> None:
    stub = tenant_service_pb2_grpc.TenantServiceStub(channel)
    reply = stub.Signup(
        tenant_service_pb2.SignupRequest(
            name="Internal", email="internal@acme.example", password="long enough pw"
        )
    )
    assert reply.api_key.startswith("clk_")
    with pytest.raises(grpc.RpcError) as caught:
        stub.Signup(
            tenant_service_pb2.SignupRequest(name="x", email="bad", password="long enough pw")
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
