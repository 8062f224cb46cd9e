"""PostgreSQL frozen (SIGSTOP of every process of the platform's own server)
for 15 s while a tenant keeps sending SMS, reading, listing, signing up,
and a provider posting receipts to the callbacks process:
every answer arrives within 5 s, those during the freeze are 503
DATABASE_UNAVAILABLE with Retry-After, and once it thaws everything resumes by
itself: every accepted SMS reaches a final state, sent exactly once."""

import secrets
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import httpx

from providers.twilio.webhooks import twilio_signature
from runner.stack import Stack
from tests.conftest import Tenant, signup
from tests.e2e.test_callbacks import TWILIO_TOKEN, _delivery
from tests.e2e.waiting import wait_for, wait_for_status
from tests.faults.conftest import StartStack, creates_by_number
from tests.faults.processes import postgres_frozen

FREEZE_SECONDS = 15
ANSWER_LIMIT = 5.0
FINAL = {"delivered", "failed"}


@dataclass(frozen=True)
class Answer:
    kind: str
    # Seconds since the load started, when the request was sent.
    at: float
    seconds: float
    status: int
    retry_after: str | None
    reason: str
    notification_id: str | None = None
    phone: str | None = None


def _reason(response: httpx.Response) -> str:
    try:
        details = response.json().get("details") or [{}]
    except ValueError:
        return response.text[:80]
    return str(details[0].get("reason", ""))


class Load:
    """One loop per kind of request, each in its own thread, until stopped."""

    def __init__(self, platform: Stack, tenant: Tenant, known_id: str) -> None:
        self._platform = platform
        self._tenant = tenant
        self._known_id = known_id
        delivery_id, message_sid = _delivery(platform, known_id)
        # A duplicate of a receipt already recorded: accepted, changes nothing.
        self._receipt_path = f"/callbacks/twilio?delivery_id={delivery_id}"
        self._receipt = {"MessageSid": message_sid, "MessageStatus": "delivered"}
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sent = 0
        self.answers: list[Answer] = []

    def run(self, seconds: float) -> None:
        self._start = time.monotonic()
        kinds: list[Callable[[httpx.Client], Answer]] = [
            self._send, self._send, self._get, self._list, self._signup, self._callback,
        ]  # fmt: skip
        with ThreadPoolExecutor(max_workers=len(kinds)) as pool:
            futures = [
                # Signups at most one a second: Envoy allows each address no more.
                pool.submit(self._loop, kind, 1.0 if kind == self._signup else 0.1)
                for kind in kinds
            ]
            time.sleep(seconds)
            self._stop.set()
            for future in futures:
                future.result(timeout=30)

    def _loop(self, request: Callable[[httpx.Client], Answer], pause: float) -> None:
        # Longer than any answer should take: a hang shows as a slow answer.
        with httpx.Client(base_url=self._platform.api_url, timeout=20) as client:
            while not self._stop.is_set():
                answer = request(client)
                with self._lock:
                    self.answers.append(answer)
                time.sleep(pause)

    def _timed(self, kind: str, call: Callable[[], httpx.Response]) -> tuple[Answer, Any]:
        sent = time.monotonic()
        response = call()
        answer = Answer(
            kind=kind,
            at=sent - self._start,
            seconds=time.monotonic() - sent,
            status=response.status_code,
            retry_after=response.headers.get("retry-after"),
            reason="" if response.status_code == 200 else _reason(response),
        )
        return answer, response.json() if response.status_code == 200 else None

    def _send(self, client: httpx.Client) -> Answer:
        with self._lock:
            self._sent += 1
            # +1 415 9nn nnnn: one number per send, so copies can be counted.
            phone = f"+14159{self._sent:06d}"
        answer, body = self._timed(
            "send",
            lambda: client.post(
                "/api/v1/notifications/send",
                headers=self._tenant.headers,
                json={
                    "recipient": {"phone": phone},
                    "notification": {"channels": ["sms"], "body": "freeze"},
                    "idempotency_key": f"freeze-{phone}",
                },
            ),
        )
        if body is None:
            return answer
        return replace(answer, notification_id=body["notification_id"], phone=phone)

    def _get(self, client: httpx.Client) -> Answer:
        path = f"/api/v1/notifications/{self._known_id}"
        return self._timed("get", lambda: client.get(path, headers=self._tenant.headers))[0]

    def _list(self, client: httpx.Client) -> Answer:
        return self._timed(
            "list", lambda: client.get("/api/v1/notifications", headers=self._tenant.headers)
        )[0]

    def _signup(self, client: httpx.Client) -> Answer:
        account = {
            "name": "Frozen",
            "email": f"frozen-{secrets.token_hex(6)}@acme.example",
            "password": "correct horse 42",
        }
        return self._timed("signup", lambda: client.post("/portal/signup", json=account))[0]

    def _callback(self, client: httpx.Client) -> Answer:
        url = self._platform.webhook_url + self._receipt_path
        signature = twilio_signature(TWILIO_TOKEN, url, sorted(self._receipt.items()))
        return self._timed(
            "callback",
            lambda: client.post(url, data=self._receipt, headers={"X-Twilio-Signature": signature}),
        )[0]


def settled(tenant: Tenant, answer: Answer) -> str:
    """Waits until the send is delivered or failed, or sent with its receipt
    given up on: a receipt that came while the callbacks answered 503 and ran
    out of the provider's retries leaves it truthfully unconfirmed."""

    def check() -> str | None:
        body = tenant.get(f"/api/v1/notifications/{answer.notification_id}").json()
        if body["status"] in FINAL:
            return str(body["status"])
        reason = body["deliveries"][0]["reason"]
        return "unconfirmed" if body["status"] == "sent" and "unconfirmed" in reason else None

    result: str = wait_for(check, timeout=120)
    return result


def test_frozen_postgres_answers_503_within_5_s_and_everything_resumes(
    own_stack: StartStack,
) -> None:
    platform = own_stack(CLARION_DISPATCH_SWEEP_SECONDS="1")
    with httpx.Client(base_url=platform.api_url, timeout=30) as api:
        tenant = signup(api)
        first = tenant.post(
            "/api/v1/notifications/send",
            {"recipient": {"phone": "+14158000001"}, "notification": {"channels": ["sms"],
             "body": "before"}},
        )  # fmt: skip
        assert first.status_code == 200, first.text
        wait_for_status(tenant, first.json()["notification_id"], {"delivered"})
        load = Load(platform, tenant, first.json()["notification_id"])
        freeze: dict[str, float] = {}

        def freeze_postgres() -> None:
            time.sleep(3)
            with postgres_frozen(platform):
                freeze["from"] = time.monotonic() - load_start
                time.sleep(FREEZE_SECONDS)
            freeze["to"] = time.monotonic() - load_start

        load_start = time.monotonic()
        freezer = threading.Thread(target=freeze_postgres)
        freezer.start()
        load.run(3 + FREEZE_SECONDS + 8)
        freezer.join(timeout=30)
        answers = load.answers

        during = [a for a in answers if freeze["from"] + 0.5 < a.at < freeze["to"] - 0.5]
        unavailable = [a for a in answers if a.status == 503]
        slowest = max(answers, key=lambda a: a.seconds)
        p50 = statistics.median(a.seconds for a in unavailable) if unavailable else 0.0
        print(
            f"\nPostgreSQL frozen {FREEZE_SECONDS} s: {len(answers)} answers "
            f"{dict(Counter(a.status for a in answers))}, slowest {slowest.seconds:.2f} s "
            f"({slowest.kind} {slowest.status}); 503s: {len(unavailable)}, "
            f"p50 {p50 * 1000:.0f} ms, max {max((a.seconds for a in unavailable), default=0):.2f} s"
        )
        for kind in sorted({a.kind for a in unavailable}):
            times = [a.seconds for a in unavailable if a.kind == kind]
            print(
                f"  {kind}: {len(times)} x 503, p50 {statistics.median(times) * 1000:.0f} ms, "
                f"max {max(times):.2f} s"
            )
        assert slowest.seconds < ANSWER_LIMIT, slowest
        assert unavailable and during
        assert all(a.status == 503 for a in during), Counter(
            (a.kind, a.status, a.reason) for a in during
        )
        assert {a.reason for a in unavailable} == {"DATABASE_UNAVAILABLE"}
        assert all(a.retry_after and int(a.retry_after) > 0 for a in unavailable)
        # Resumed by itself: the last answers of each kind are 200 again.
        for kind in ("send", "get", "list", "signup", "callback"):
            last = [a for a in answers if a.kind == kind][-1]
            assert last.status == 200 and last.at > freeze["to"], last

        accepted = [a for a in answers if a.notification_id]
        unconfirmed = [a for a in accepted if settled(tenant, a) == "unconfirmed"]
        print(f"{len(unconfirmed)} sends ended sent, unconfirmed: their receipt came in the freeze")
        # Only a send made before the thaw can lose its receipt to the freeze.
        assert all(a.at < freeze["to"] for a in unconfirmed), unconfirmed
    creates = creates_by_number(platform)
    copies = Counter(creates[str(a.phone)] for a in accepted)
    print(f"{len(accepted)} sends accepted; creates per accepted send: {dict(copies)}")
    assert copies == Counter({1: len(accepted)})
