"""Provider webhook paths on the webhook Envoy, fuzzed: whatever body,
content type, signature headers and query arrive, the answer is a 2xx or
a 4xx, never a 5xx (a provider retries 5xx, so an attacker could make it
hammer us). Bounded: a fixed number of examples, derandomized."""

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.stack import Stack

PROVIDERS = ["twilio", "mailgun", "whatsapp", "unknown"]
SIGNATURE_HEADERS = ["X-Twilio-Signature", "X-Hub-Signature-256", "Content-Type"]

# Header values as a client can send them: printable Latin-1, no CR/LF, and
# no space at either end (RFC 9110 §5.5; httpx's h11 refuses to send one).
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80).map(
    lambda value: value.strip(" ")
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(lambda v: httpx.Request("POST", "/", json=v).content),
    # Mailgun's shape, with arbitrary values where the fields go.
    st.fixed_dictionaries(
        {
            "signature": st.dictionaries(
                st.sampled_from(["timestamp", "token", "signature"]), json_values
            ),
            "event-data": json_values,
        }
    ).map(lambda v: httpx.Request("POST", "/", json=v).content),
    st.dictionaries(
        st.sampled_from(["MessageStatus", "MessageSid", "CallStatus", "CallSid", "ErrorCode"]),
        st.text(max_size=20),
    ).map(lambda v: httpx.Request("POST", "/", data=v).content),
)


@pytest.fixture(scope="module")
def webhook_client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.webhook_url, timeout=10)


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    provider=st.sampled_from(PROVIDERS),
    body=bodies,
    headers=st.dictionaries(st.sampled_from(SIGNATURE_HEADERS), header_text, max_size=3),
    query=st.dictionaries(
        st.sampled_from(["delivery_id", "hub.mode", "hub.verify_token", "hub.challenge"]),
        st.text(max_size=30),
        max_size=3,
    ),
    method=st.sampled_from(["POST", "GET"]),
)
def test_webhooks_never_answer_5xx(
    webhook_client: httpx.Client,
    provider: str,
    body: bytes,
    headers: dict[str, str],
    query: dict[str, str],
    method: str,
) -> None:
    response = webhook_client.request(
        method,
        f"/callbacks/{provider}",
        params=query,
        content=body if method == "POST" else None,
        # Raw bytes, so that non-ASCII signatures go out as a client could send them.
        headers={k: v.encode("latin-1") for k, v in headers.items()},
    )
    assert response.status_code < 500, (response.status_code, response.text[:300])
