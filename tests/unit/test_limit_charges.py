"""What each call is charged: routed sends count toward every channel they
may try, and setting the default routing is a write."""

from clarion.v1 import notification_service_pb2 as pb

from server.api.limits import (
    SEND,
    SEND_BULK,
    UPDATE_DEFAULT_ROUTING,
    charge_for,
    wants_default_routing,
)
from server.domain.limits import LimitName


def test_a_routed_send_counts_toward_its_routing_channels() -> None:
    request = pb.SendNotificationRequest(
        notification=pb.NotificationContent(routing=pb.Routing(channels=["sms", "email"]))
    )
    charge = charge_for(SEND, request)
    assert (charge.limit, charge.cost, charge.channels) == (LimitName.SEND, 1, ["sms", "email"])
    assert not wants_default_routing(SEND, request)


def test_a_routed_bulk_counts_each_row_toward_its_routing_channels() -> None:
    request = pb.SendBulkRequest(
        routing=pb.Routing(channels=["email", "sms"]),
        recipients=[pb.BulkRecipient(phone="+14155550100")] * 3,
    )
    charge = charge_for(SEND_BULK, request)
    assert (charge.limit, charge.cost, charge.channels) == (
        LimitName.BULK_ROWS,
        3,
        ["email", "sms"],
    )


def test_high_priority_without_channels_counts_the_default_routing() -> None:
    high = pb.SendNotificationRequest(notification=pb.NotificationContent(priority="high"))
    assert wants_default_routing(SEND, high)
    with_channels = pb.SendNotificationRequest(
        notification=pb.NotificationContent(priority="high", channels=["sms"])
    )
    assert not wants_default_routing(SEND, with_channels)


def test_setting_the_default_routing_is_a_write() -> None:
    charge = charge_for(UPDATE_DEFAULT_ROUTING, pb.UpdateDefaultRoutingRequest())
    assert charge.limit is LimitName.WRITES
