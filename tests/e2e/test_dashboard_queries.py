"""The lists the portal's dashboard and bulk pages stand on, through Envoy:
notifications within a time range, and the tenant's bulk sends newest first
with their progress, a page at a time."""

import time

import httpx

from tests.conftest import Tenant, signup
from tests.e2e.test_bulk import BULK, wait_bulk_done
from tests.e2e.test_idempotency_and_listing import SEND, sms
from tests.e2e.waiting import wait_for_status

LIST = "/api/v1/notifications"


def _created(tenant: Tenant, notification_id: str) -> str:
    created: str = tenant.get(f"{LIST}/{notification_id}").json()["created_at"]
    return created


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [n["notification_id"] for n in response.json()["notifications"]]


def test_notifications_within_a_time_range(tenant: Tenant) -> None:
    sent = []
    for i in range(3):
        sent.append(tenant.post(SEND, sms(f"range {i}")).json()["notification_id"])
        time.sleep(0.05)
    first, second, third = sent
    since = _created(tenant, second)

    assert _ids(tenant.get(LIST, params={"created_after": since})) == [third, second]
    assert _ids(tenant.get(LIST, params={"created_before": since})) == [first]
    window = {"created_after": _created(tenant, first), "created_before": _created(tenant, third)}
    assert _ids(tenant.get(LIST, params=window)) == [second, first]
    # Paging keeps the range.
    page = tenant.get(LIST, params={**window, "page_size": 1})
    assert _ids(page) == [second]
    token = page.json()["next_page_token"]
    assert _ids(tenant.get(LIST, params={**window, "page_size": 1, "page_token": token})) == [first]


def test_a_time_range_the_wrong_way_round_or_not_a_time_is_a_clear_400(tenant: Tenant) -> None:
    backwards = tenant.get(
        LIST,
        params={"created_after": "2026-12-02T10:00:00Z", "created_before": "2026-12-02T09:00:00Z"},
    )
    assert backwards.status_code == 400
    violation = backwards.json()["details"][1]["field_violations"][0]
    assert violation["field"] == "created_before"
    assert "later than created_after" in violation["description"]

    garbage = tenant.get(LIST, params={"created_after": "yesterday"})
    assert garbage.status_code == 400, garbage.text
    assert "created_after" in garbage.text


def test_bulks_are_listed_newest_first_with_progress_and_paged(
    tenant: Tenant, api: httpx.Client
) -> None:
    bulk_ids = []
    for i in range(3):
        accepted = tenant.post(
            BULK,
            {
                "channels": ["sms"],
                "body": f"bulk list {i}",
                "recipients": [{"phone": "+14155550123"}, {"phone": "not-a-phone"}],
            },
        )
        assert accepted.status_code == 200, accepted.text
        bulk_ids.append(accepted.json()["bulk_id"])
    wait_bulk_done(tenant, bulk_ids[-1])

    first = tenant.get(BULK, params={"page_size": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [b["bulk_id"] for b in page["bulks"]] == bulk_ids[:0:-1]
    newest = page["bulks"][0]
    assert newest["total"] == 1 and newest["rejected"] == 1
    assert newest["counts"]["delivered"] == 1 and newest["channels"] == ["sms"]
    rest = tenant.get(BULK, params={"page_size": 2, "page_token": page["next_page_token"]})
    assert [b["bulk_id"] for b in rest.json()["bulks"]] == bulk_ids[:1]
    assert rest.json()["next_page_token"] == ""

    # Another tenant sees none of them.
    other = signup(api)
    assert other.get(BULK).json()["bulks"] == []


def test_stats_count_outcomes_by_channel_in_buckets(tenant: Tenant) -> None:
    sent = [
        tenant.post(SEND, sms(f"stats {i}", phone=phone)).json()["notification_id"]
        for i, phone in enumerate(["+14155550123", "+14155550124", "+15005550001"])
    ]
    for notification_id, status in zip(sent, ["delivered", "delivered", "failed"], strict=True):
        wait_for_status(tenant, notification_id, {status})

    hour = tenant.get("/api/v1/stats")
    assert hour.status_code == 200, hour.text
    body = hour.json()
    assert body["bucket_seconds"] == 300
    (channel,) = body["channels"]
    assert channel["channel"] == "sms"
    assert (channel["delivered"], channel["failed"], channel["sent"]) == (2, 1, 2)
    assert abs(channel["failure_rate"] - 1 / 3) < 1e-9
    assert len(channel["buckets"]) == 12
    assert sum(b["delivered"] for b in channel["buckets"]) == 2
    # The sends happened just now: in the newest bucket.
    assert channel["buckets"][-1]["failed"] == 1

    day = tenant.get("/api/v1/stats", params={"window": "24h"}).json()
    assert day["bucket_seconds"] == 3600 and len(day["channels"][0]["buckets"]) == 24
    assert day["channels"][0]["delivered"] == 2

    wrong = tenant.get("/api/v1/stats", params={"window": "7d"})
    assert wrong.status_code == 400
    assert wrong.json()["details"][1]["field_violations"][0]["field"] == "window"
