"""Tests of the contract helper itself, on hand-built ``httpx.Request`` objects.

Every check here runs openapi-core against the trimmed official specs in
``tests/contract/specs/``; nothing is stubbed. The requests are addressed to a
sandbox-like base URL (http://127.0.0.1:PORT) to show that only the path is
matched against the providers' servers.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from tests.contract.openapi_check import (
    TWILIO_SPEC,
    WHATSAPP_SPEC,
    HttpxOpenAPIRequest,
    assert_request_matches,
    async_request_checker,
    load_spec,
    request_checker,
    request_errors,
)

SANDBOX = "http://127.0.0.1:48123"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "sandbox-auth-token"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
CALLS_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
WHATSAPP_PATH = "/v21.0/106540352242922/messages"


def twilio_request(
    fields: dict[str, Any],
    *,
    path: str = MESSAGES_PATH,
    auth: httpx.Auth | None = None,
    base: str = SANDBOX,
) -> httpx.Request:
    """A form-encoded POST the way the Twilio adapters send it (HTTP Basic
    applied through httpx's own auth flow, idempotency header set)."""
    request = httpx.Request(
        "POST",
        base + path,
        data=fields,
        headers={"I-Twilio-Idempotency-Token": "3b0c6f1e-idem"},
    )
    if auth is None:
        auth = httpx.BasicAuth(ACCOUNT_SID, AUTH_TOKEN)
    return next(auth.auth_flow(request))


def sms_fields(**overrides: Any) -> dict[str, Any]:
    fields = {
        "To": "+15551230001",
        "From": "+15559870002",
        "Body": "Your code is 123456",
        "StatusCallback": "http://127.0.0.1:48124/callbacks/twilio/status",
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def template_message(**overrides: Any) -> dict[str, Any]:
    """A WhatsApp template message shaped as the official spec requires."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+15551230001",
        "type": "template",
        "template": {
            "name": "otp_code",
            "language": {"policy": "deterministic", "code": "en_US"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "123456"}]},
            ],
        },
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def whatsapp_request(
    body: Any,
    *,
    token: str | None = "EAAG-sandbox-token",
    path: str = WHATSAPP_PATH,
    method: str = "POST",
) -> httpx.Request:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.Request(method, SANDBOX + path, json=body, headers=headers)


def assert_fails(spec: Any, request: httpx.Request, *expected: str) -> str:
    """The helper raises AssertionError and its message names every ``expected`` text."""
    with pytest.raises(AssertionError) as raised:
        assert_request_matches(spec, request)
    message = str(raised.value)
    for text in expected:
        assert text in message, message
    return message


# --------------------------------------------------------------------- Twilio SMS


def test_twilio_create_message_form_request_passes() -> None:
    request = twilio_request(sms_fields())
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"].startswith("Basic ")

    assert_request_matches(TWILIO_SPEC, request)


def test_twilio_create_message_with_messaging_service_and_media_passes() -> None:
    fields = sms_fields(
        From=None,
        MessagingServiceSid="MG" + "a" * 32,
        MediaUrl=["https://example.com/a.png", "https://example.com/b.png"],
        ValidityPeriod="600",
    )

    assert_request_matches(TWILIO_SPEC, twilio_request(fields))


def test_twilio_create_message_missing_to_fails() -> None:
    assert_fails(
        TWILIO_SPEC,
        twilio_request(sms_fields(To=None)),
        "does not match twilio_api_v2010.yaml",
        "'To' is a required property",
    )


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("ValidityPeriod", "ten minutes", "integer"),
        ("MessagingServiceSid", "MG-not-a-sid", "does not match '^MG[0-9a-fA-F]{32}$'"),
        ("ContentRetention", "forever", "is not one of ['retain', 'discard']"),
    ],
)
def test_twilio_create_message_wrong_field_value_fails(
    field: str, value: str, expected: str
) -> None:
    assert_fails(TWILIO_SPEC, twilio_request(sms_fields(**{field: value})), expected)


def test_twilio_unknown_path_fails() -> None:
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Message.json"
    assert_fails(TWILIO_SPEC, twilio_request(sms_fields(), path=path), "Path not found")


def test_twilio_operation_outside_the_trimmed_spec_fails() -> None:
    request = httpx.Request("GET", SANDBOX + MESSAGES_PATH)
    assert_fails(TWILIO_SPEC, request, "Operation get not found")


def test_twilio_malformed_account_sid_in_path_fails() -> None:
    path = "/2010-04-01/Accounts/not-an-account/Messages.json"
    assert_fails(
        TWILIO_SPEC,
        twilio_request(sms_fields(), path=path),
        "Invalid path parameter: AccountSid",
    )


def test_twilio_request_without_basic_auth_fails() -> None:
    request = httpx.Request("POST", SANDBOX + MESSAGES_PATH, data=sms_fields())
    assert_fails(TWILIO_SPEC, request, "accountSid_authToken")


def test_twilio_request_with_bearer_instead_of_basic_auth_fails() -> None:
    request = httpx.Request(
        "POST", SANDBOX + MESSAGES_PATH, data=sms_fields(), headers={"Authorization": "Bearer x"}
    )
    assert_fails(TWILIO_SPEC, request, "accountSid_authToken")


def test_twilio_json_body_fails() -> None:
    request = next(
        httpx.BasicAuth(ACCOUNT_SID, AUTH_TOKEN).auth_flow(
            httpx.Request("POST", SANDBOX + MESSAGES_PATH, json=sms_fields())
        )
    )
    assert_fails(TWILIO_SPEC, request, "mimetype not found: application/json")


# -------------------------------------------------------------------- Twilio voice


def call_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "To": "+15551230001",
        "From": "+15559870002",
        "Twiml": "<Response><Say>Your code is 1 2 3 4 5 6</Say></Response>",
        "StatusCallback": "http://127.0.0.1:48124/callbacks/twilio/voice",
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def test_twilio_create_call_with_repeated_status_callback_event_passes() -> None:
    request = twilio_request(call_fields(), path=CALLS_PATH)
    assert request.content.decode().count("StatusCallbackEvent=") == 4

    assert_request_matches(TWILIO_SPEC, request)


def test_twilio_create_call_form_fields_are_read_as_the_spec_types() -> None:
    """openapi-core parses the repeated form field into the spec's array."""
    request = twilio_request(call_fields(Timeout="30"), path=CALLS_PATH)
    assert request_errors(TWILIO_SPEC, request) == []

    result = load_spec(TWILIO_SPEC).unmarshal_request(
        HttpxOpenAPIRequest(request, "https://api.twilio.com", CALLS_PATH)
    )
    assert result.errors == []
    assert isinstance(result.body, dict)
    assert result.body["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert result.body["Timeout"] == 30


def test_twilio_create_call_missing_from_fails() -> None:
    assert_fails(
        TWILIO_SPEC,
        twilio_request(call_fields(From=None), path=CALLS_PATH),
        "'From' is a required property",
    )


def test_twilio_create_call_non_integer_timeout_fails() -> None:
    assert_fails(
        TWILIO_SPEC,
        twilio_request(call_fields(Timeout="soon"), path=CALLS_PATH),
        "Failed to cast value to integer type: soon",
    )


# ------------------------------------------------------------------------ WhatsApp


def test_whatsapp_template_message_passes() -> None:
    request = whatsapp_request(template_message())
    assert request.headers["content-type"] == "application/json"

    assert_request_matches(WHATSAPP_SPEC, request)


def test_whatsapp_template_with_header_currency_and_date_time_parameters_passes() -> None:
    template = {
        "name": "order_ready",
        "language": {"policy": "deterministic", "code": "en"},
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "Order 42"}]},
            {
                "type": "body",
                "parameters": [
                    {
                        "type": "currency",
                        "currency": {
                            "fallback_value": "$10.00",
                            "code": "USD",
                            "amount_1000": 10000,
                        },
                    },
                    {"type": "date_time", "date_time": {"fallback_value": "May 1, 2025"}},
                ],
            },
        ],
    }

    assert_request_matches(WHATSAPP_SPEC, whatsapp_request(template_message(template=template)))


def test_whatsapp_type_template_without_template_object_fails() -> None:
    assert_fails(
        WHATSAPP_SPEC,
        whatsapp_request(template_message(template=None)),
        "does not match whatsapp_business_messaging.yaml",
        "'template' is a required property",
    )


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda t: t.update(name=42), "at $.template.name: 42 is not of type 'string'"),
        (lambda t: t.pop("language"), "'language' is a required property"),
        (lambda t: t["language"].pop("code"), "at $.template.language: 'code' is a required"),
        (lambda t: t.update(components={"type": "body"}), "is not of type 'array'"),
        (
            lambda t: t["components"][0].update(type="footer"),
            "'footer' is not one of ['header', 'body', 'button']",
        ),
    ],
)
def test_whatsapp_template_with_bad_shape_fails(mutate: Any, expected: str) -> None:
    # Not asserted: the items of ``components[].parameters``. The spec types them only
    # through BodyComponent/HeaderComponent, which TemplateComponent reaches by a
    # bare ``discriminator`` (no oneOf/anyOf/allOf), and openapi-core - like JSON
    # Schema - only follows a discriminator inside oneOf/anyOf/allOf.
    body = template_message()
    template = copy.deepcopy(body["template"])
    mutate(template)
    body["template"] = template

    assert_fails(WHATSAPP_SPEC, whatsapp_request(body), expected)


def test_whatsapp_template_as_plain_string_fails() -> None:
    assert_fails(
        WHATSAPP_SPEC,
        whatsapp_request(template_message(template="otp_code")),
        "'otp_code' is not of type 'object'",
    )


def test_whatsapp_spec_requires_recipient_type_and_language_policy() -> None:
    """The official v23.0 description makes ``recipient_type`` (BaseMessageProperties)
    and ``template.language.policy`` (LanguageObject) required, so a payload
    without them - as first sketched for the adapter - does not conform."""
    body = template_message(recipient_type=None)
    del body["template"]["language"]["policy"]

    errors = request_errors(WHATSAPP_SPEC, whatsapp_request(body))

    assert len(errors) == 1
    assert "at $: 'recipient_type' is a required property" in errors[0]
    assert "at $.template.language: 'policy' is a required property" in errors[0]


def test_whatsapp_request_without_bearer_token_fails() -> None:
    assert_fails(WHATSAPP_SPEC, whatsapp_request(template_message(), token=None), "bearerAuth")


def test_whatsapp_form_encoded_body_fails() -> None:
    request = httpx.Request(
        "POST",
        SANDBOX + WHATSAPP_PATH,
        data={"messaging_product": "whatsapp"},
        headers={"Authorization": "Bearer EAAG-sandbox-token"},
    )
    assert_fails(WHATSAPP_SPEC, request, "mimetype not found: application/x-www-form-urlencoded")


def test_whatsapp_content_type_with_charset_fails_the_spec_header_enum() -> None:
    request = httpx.Request(
        "POST",
        SANDBOX + WHATSAPP_PATH,
        content=json.dumps(template_message()).encode(),
        headers={
            "Authorization": "Bearer EAAG-sandbox-token",
            "Content-Type": "application/json; charset=utf-8",
        },
    )
    assert_fails(WHATSAPP_SPEC, request, "Invalid header parameter: Content-Type")


def test_whatsapp_unknown_path_fails() -> None:
    request = whatsapp_request(template_message(), path="/v21.0/106540352242922/message")
    assert_fails(WHATSAPP_SPEC, request, "Path not found")


# ---------------------------------------------------------------- helper mechanics


def test_path_prefix_is_stripped_before_matching() -> None:
    request = twilio_request(sms_fields(), path="/twilio" + MESSAGES_PATH)
    assert_fails(TWILIO_SPEC, request, "not found for https://api.twilio.com/twilio/2010-04-01/")

    assert_request_matches(TWILIO_SPEC, request, path_prefix="/twilio/")


def test_path_prefix_that_is_absent_fails() -> None:
    with pytest.raises(AssertionError, match="does not start with '/whatsapp'"):
        assert_request_matches(
            WHATSAPP_SPEC, whatsapp_request(template_message()), path_prefix="/whatsapp"
        )


def test_specs_are_loaded_once() -> None:
    relative = TWILIO_SPEC.relative_to(TWILIO_SPEC.parents[2])
    assert load_spec(TWILIO_SPEC) is load_spec(TWILIO_SPEC.parents[2] / relative)
    assert load_spec(TWILIO_SPEC) is not load_spec(WHATSAPP_SPEC)


def test_request_checker_hook_sees_auth_applied_by_the_client() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json={"sid": "SM" + "0" * 32})

    with httpx.Client(
        base_url=SANDBOX,
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        transport=httpx.MockTransport(handler),
        event_hooks={"request": [request_checker(TWILIO_SPEC)]},
    ) as client:
        assert client.post(MESSAGES_PATH, data=sms_fields()).status_code == 201
        with pytest.raises(AssertionError, match="'To' is a required property"):
            client.post(MESSAGES_PATH, data=sms_fields(To=None))

    assert len(sent) == 1


async def test_async_request_checker_hook() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"messages": [{"id": "wamid.1"}]})

    async with httpx.AsyncClient(
        base_url=SANDBOX,
        headers={"Authorization": "Bearer EAAG-sandbox-token"},
        transport=httpx.MockTransport(handler),
        event_hooks={"request": [async_request_checker(WHATSAPP_SPEC)]},
    ) as client:
        response = await client.post(WHATSAPP_PATH, json=template_message())
        assert response.status_code == 200
        with pytest.raises(AssertionError, match="'template' is a required property"):
            await client.post(WHATSAPP_PATH, json=template_message(template=None))
