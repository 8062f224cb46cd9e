"""Send → delivered per channel against the provider sandbox, through Envoy.

    .venv/bin/python -m bench.channel_latency [--per-channel 50]

Each channel gets the same number of sends, paced one at a time, and the time
from acceptance to the provider's delivery receipt is read from the server's
own timestamps. The ceiling beside it is the sandbox's configured callback
delay (0.2 s): a receipt cannot arrive sooner.
"""

import argparse
import time
from typing import Any

import httpx

from bench.platform import fresh_stack
from bench.send_latency import percentile, wait_delivered
from runner.stack import Stack

CALLBACK_DELAY_MS = 200.0

PAYLOADS: dict[str, dict[str, Any]] = {
    "email": {
        "recipient": {"email": "user@example.com"},
        "notification": {"channels": ["email"], "subject": "Order Update", "body": "shipped"},
    },
    "sms": {
        "recipient": {"phone": "+14155550123"},
        "notification": {"channels": ["sms"], "body": "Your OTP is 549921"},
    },
    "slack": {
        "recipient": {"slack_user_id": "U123456"},
        "notification": {"channels": ["slack"], "body": "*payments* alert"},
    },
    "voice": {
        "recipient": {"phone": "+14155550123"},
        "notification": {"channels": ["voice"], "body": "Your order shipped"},
    },
    "whatsapp": {
        "recipient": {"phone": "+14155550123"},
        "notification": {
            "channels": ["whatsapp"],
            "template_id": "wa_order_update",
            "data": {"name": "Alex", "order_id": "ORD-1001"},
        },
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-channel", type=int, default=50)
    args = parser.parse_args()
    with fresh_stack() as stack:
        run(stack, args.per_channel)


def run(stack: Stack, per_channel: int) -> None:
    with httpx.Client(base_url=stack.api_url, timeout=30) as api:
        key = api.post(
            "/portal/signup",
            json={"name": "Bench", "email": "channels@bench.example", "password": "benchmark pass"},
        ).json()["api_key"]
        headers = {"X-API-Key": key}
        api.post(
            "/api/v1/templates",
            headers=headers,
            json={
                "template_id": "wa_order_update",
                "channels": {
                    "whatsapp": {
                        "body": "Hi {{name}}, your order {{order_id}} is confirmed.",
                        "language": "en_US",
                    }
                },
            },
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            template = api.get("/api/v1/templates/wa_order_update", headers=headers).json()
            if template["whatsapp_approval"]["status"] == "approved":
                break
            time.sleep(0.2)

        print(f"\n{per_channel} sends per channel, one at a time; ceiling = 200 ms receipt delay")
        print(f"{'channel':<10}{'p50 ms':>10}{'p99 ms':>10}{'p50/ceiling':>13}")
        for channel, payload in PAYLOADS.items():
            ids = []
            for _ in range(per_channel):
                response = api.post("/api/v1/notifications/send", headers=headers, json=payload)
                assert response.status_code == 200, response.text
                ids.append(response.json()["notification_id"])
                time.sleep(0.05)
            times = wait_delivered(api, headers, ids)
            if len(times) < len(ids):
                print(f"{channel:<10} only {len(times)}/{len(ids)} delivered")
                continue
            p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
            print(f"{channel:<10}{p50:>10.0f}{p99:>10.0f}{p50 / CALLBACK_DELAY_MS:>12.1f}x")
        print("slack has no receipt: delivered when chat.postMessage succeeds")


if __name__ == "__main__":
    main()
