"""The OpenAPI generator, on a small proto that uses what ours do not yet
(int64, enums, maps, nested messages, query parameters beside a body field)
and on the real descriptor set, whose document must be the committed one."""

import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from gateway.openapi import build_document, read_reasons, render

ROOT = Path(__file__).resolve().parents[2]
API_DOC = (ROOT / "docs" / "api.md").read_text()

SAMPLE_PROTO = """
syntax = "proto3";
package sample.v1;

import "google/api/annotations.proto";
import "google/api/field_behavior.proto";
import "google/api/httpbody.proto";
import "google/protobuf/timestamp.proto";

// Keeps widgets.
service WidgetService {
  // Returns one widget. Unknown ids give NOT_FOUND.
  // buf:lint:ignore RPC_RESPONSE_STANDARD_NAME
  // (a note for maintainers only)
  rpc GetWidget(GetWidgetRequest) returns (Widget) {
    option (google.api.http) = {get: "/api/v1/shelves/{shelf_id}/widgets/{widget_id}"};
  }
  // Stores a widget.
  rpc PutWidget(PutWidgetRequest) returns (Widget) {
    option (google.api.http) = {post: "/api/v1/shelves/{shelf_id}/widgets" body: "widget"};
  }
  // Takes raw bytes.
  rpc Upload(UploadRequest) returns (Widget) {
    option (google.api.http) = {post: "/public/upload" body: "file"};
  }
}

// A widget.
message Widget {
  // Kinds of widget.
  enum Kind {
    KIND_UNSPECIFIED = 0;
    KIND_ROUND = 1;
  }
  // Its id.
  string widget_id = 1;
  // Its weight in grams.
  int64 weight_grams = 2;
  Kind kind = 3;
  map<string, int32> counts = 4;
  repeated Part parts = 5;
  google.protobuf.Timestamp made_at = 6;
  uint32 size = 7;
  oneof label {
    string text = 8;
  }
}

// A part of a widget.
message Part {
  string name = 1 [(google.api.field_behavior) = REQUIRED];
}

message GetWidgetRequest {
  string shelf_id = 1;
  int64 widget_id = 2;
  // Which view.
  string view = 3;
  repeated string fields = 4;
}

message PutWidgetRequest {
  string shelf_id = 1;
  Widget widget = 2;
  bool validate_only = 3;
}

message UploadRequest {
  string name = 1 [(google.api.field_behavior) = REQUIRED];
  google.api.HttpBody file = 2;
}
"""


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("proto")
    (tmp / "sample.proto").write_text(SAMPLE_PROTO)
    site = sysconfig.get_paths()["purelib"]
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp}", f"-I{site}",
         "--include_imports", "--include_source_info",
         f"--descriptor_set_out={tmp / 'sample.binpb'}", "sample.proto",
         "google/rpc/status.proto", "google/rpc/error_details.proto"],
        check=True, timeout=60,
    )  # fmt: skip
    document = build_document(tmp / "sample.binpb", API_DOC, ["sample.v1.WidgetService"])
    validate(document)
    return document


def schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    result: dict[str, Any] = document["components"]["schemas"][name]
    return result


def test_int64_is_a_string_and_enums_print_their_names(sample: dict[str, Any]) -> None:
    widget = schema(sample, "Widget")["properties"]
    assert widget["weight_grams"]["type"] == "string"
    assert widget["weight_grams"]["description"] == "Its weight in grams."
    assert widget["kind"] == {"type": "string", "enum": ["KIND_UNSPECIFIED", "KIND_ROUND"]}
    assert widget["counts"] == {
        "type": "object",
        "additionalProperties": {"type": "integer", "format": "int32"},
    }
    assert widget["made_at"] == {"type": "string", "format": "date-time"}
    assert widget["parts"] == {"type": "array", "items": {"$ref": "#/components/schemas/Part"}}
    assert widget["size"]["maximum"] == 2**32 - 1


def test_responses_require_what_the_transcoder_always_prints(sample: dict[str, Any]) -> None:
    widget = schema(sample, "Widget")
    # Messages and oneof members are printed only when set.
    assert widget["required"] == ["widget_id", "weight_grams", "kind", "counts", "parts", "size"]
    assert widget["additionalProperties"] is False


def test_requests_require_what_field_behavior_marks_required(sample: dict[str, Any]) -> None:
    # Part is only in a response here; the request's copy is WidgetInput's parts.
    assert schema(sample, "PartInput")["required"] == ["name"]
    assert "required" not in schema(sample, "WidgetInput")
    assert "additionalProperties" not in schema(sample, "WidgetInput")


def test_path_fields_are_parameters_and_the_rest_of_a_get_is_the_query(
    sample: dict[str, Any],
) -> None:
    get = sample["paths"]["/api/v1/shelves/{shelf_id}/widgets/{widget_id}"]["get"]
    params = {(p["name"], p["in"]): p for p in get["parameters"]}
    assert set(params) == {
        ("shelf_id", "path"), ("widget_id", "path"), ("view", "query"), ("fields", "query"),
    }  # fmt: skip
    assert params[("widget_id", "path")]["schema"]["type"] == "string"
    assert params[("fields", "query")]["schema"]["type"] == "array"
    assert "requestBody" not in get
    assert get["summary"] == "Returns one widget."
    assert get["description"] == "Returns one widget. Unknown ids give NOT_FOUND."
    assert get["security"] == [{"ApiKey": []}, {"SessionCookie": []}]


def test_a_body_field_is_the_body_and_the_other_fields_are_query_parameters(
    sample: dict[str, Any],
) -> None:
    put = sample["paths"]["/api/v1/shelves/{shelf_id}/widgets"]["post"]
    body = put["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/WidgetInput"}
    assert [(p["name"], p["in"]) for p in put["parameters"]] == [
        ("shelf_id", "path"), ("validate_only", "query"),
    ]  # fmt: skip


def test_http_body_is_raw_and_paths_outside_api_v1_need_no_key(sample: dict[str, Any]) -> None:
    upload = sample["paths"]["/public/upload"]["post"]
    assert upload["requestBody"]["content"] == {"*/*": {"schema": {"type": "string"}}}
    assert [(p["name"], p["in"], p["required"]) for p in upload["parameters"]] == [
        ("name", "query", True)
    ]
    assert upload["security"] == []
    assert "401" not in upload["responses"]


def test_errors_use_the_status_shape_and_list_the_documented_reasons(
    sample: dict[str, Any],
) -> None:
    reasons = {r.reason: r.status for r in read_reasons(API_DOC)}
    assert reasons["INVALID_API_KEY"] == 401 and reasons["TEMPLATE_TOO_LARGE"] == 400
    info = schema(sample, "ErrorInfo")
    assert set(info["properties"]["reason"]["enum"]) == set(reasons)
    assert info["properties"]["domain"] == {"const": "clarion"}
    # Envoy's hand-written replies leave out the empty metadata map.
    assert info["required"] == ["@type", "reason", "domain"]
    error = schema(sample, "Error")
    assert error["required"] == ["code", "message", "details"]
    responses = sample["paths"]["/api/v1/shelves/{shelf_id}/widgets"]["post"]["responses"]
    assert {"400", "401", "404", "409", "503"} <= set(responses)
    assert "INVALID_API_KEY" in sample["components"]["responses"]["Error401"]["description"]


def test_the_committed_document_is_current() -> None:
    document = build_document(ROOT / "generated" / "clarion.binpb", API_DOC)
    validate(document)
    assert render(document) == (ROOT / "generated" / "openapi.json").read_text(), (
        "generated/openapi.json is stale: run make generate"
    )


def test_the_document_covers_every_annotated_method() -> None:
    document = json.loads((ROOT / "generated" / "openapi.json").read_text())
    operations = {op["operationId"] for ops in document["paths"].values() for op in ops.values()}
    assert {"SendNotification", "Signup", "UploadBulk", "RolloutTemplate"} <= operations
    send = document["paths"]["/api/v1/notifications/send"]["post"]
    # A key, or the portal's cookie with its CSRF token on a change.
    assert send["security"] == [{"ApiKey": []}, {"SessionCookie": [], "CsrfToken": []}]
    assert document["paths"]["/portal/signup"]["post"]["security"] == []
    assert document["paths"]["/portal/session"]["get"]["security"] == [{"SessionCookie": []}]
    upload = document["paths"]["/api/v1/notifications/bulk:upload"]["post"]
    assert list(upload["requestBody"]["content"]) == ["text/csv"]
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
    }  # fmt: skip
