"""Writes the OpenAPI 3.1 document of the JSON API from the descriptor set
that Envoy's transcoder reads, so that the two cannot disagree: the
`google.api.http` annotations give paths, parameters and bodies; the proto
comments give descriptions; docs/api.md's reason table gives the errors.

    python -m gateway.openapi generated/clarion.binpb docs/api.md generated/openapi.json

The JSON follows the transcoder's print options (gateway/envoy_config.py):
proto field names, and every field without presence printed, so such fields
are `required` in responses; int64 is a string, as in protobuf's JSON mapping.
"""

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.api import annotations_pb2, field_behavior_pb2, http_pb2
from google.protobuf import descriptor_pb2

from gateway.envoy_config import OPENAPI_PATH, SERVICES
from server.api.access import SESSION_ONLY
from server.api.errors import DOMAIN

FieldProto = descriptor_pb2.FieldDescriptorProto
Schema = dict[str, Any]

SECURITY_SCHEME = "ApiKey"
# The portal's session: the cookie, and with it the CSRF header on changes.
SESSION_SCHEME = "SessionCookie"
CSRF_SCHEME = "CsrfToken"
PUBLIC_PREFIX = "/api/v1/"
# HttpBody carries any content type; the proto cannot say which, so name them here.
RAW_BODY_TYPES = {"clarion.v1.NotificationService.UploadBulk": ["text/csv"]}
# Envoy's own replies (malformed JSON, unknown path or query parameter, body
# too large, upstream down or slow) and RESOURCE_EXHAUSTED, besides the reasons.
ENVOY_STATUSES = {400, 404, 413, 429, 503, 504}
DETAIL_TYPES = ["google.rpc.ErrorInfo", "google.rpc.BadRequest"]

_INT64 = {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
_UINT64 = {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"}
_INT32 = {"type": "integer", "format": "int32"}
_UINT32 = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1}
_NUMBER = {"type": "number"}
_SCALARS: dict[int, Schema] = {
    FieldProto.TYPE_STRING: {"type": "string"},
    FieldProto.TYPE_BOOL: {"type": "boolean"},
    FieldProto.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    FieldProto.TYPE_DOUBLE: _NUMBER,
    FieldProto.TYPE_FLOAT: _NUMBER,
    FieldProto.TYPE_INT32: _INT32,
    FieldProto.TYPE_SINT32: _INT32,
    FieldProto.TYPE_SFIXED32: _INT32,
    FieldProto.TYPE_UINT32: _UINT32,
    FieldProto.TYPE_FIXED32: _UINT32,
    FieldProto.TYPE_INT64: _INT64,
    FieldProto.TYPE_SINT64: _INT64,
    FieldProto.TYPE_SFIXED64: _INT64,
    FieldProto.TYPE_UINT64: _UINT64,
    FieldProto.TYPE_FIXED64: _UINT64,
}
# Well-known types print as their JSON mapping, not as messages.
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Any": {"type": "object", "required": ["@type"]},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": _SCALARS[FieldProto.TYPE_BYTES],
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.DoubleValue": _NUMBER,
    "google.protobuf.FloatValue": _NUMBER,
    "google.protobuf.Int32Value": _INT32,
    "google.protobuf.UInt32Value": _UINT32,
    "google.protobuf.Int64Value": _INT64,
    "google.protobuf.UInt64Value": _UINT64,
}
HTTP_BODY = "google.api.HttpBody"


@dataclass
class Reason:
    reason: str
    status: int
    when: str


def read_reasons(api_doc: str) -> list[Reason]:
    """The rows of the `## Errors` table: | `REASON` [/ `REASON`] | HTTP | When |."""
    section = api_doc.split("\n## Errors", 1)[1]
    reasons = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].isdigit():
            for name in re.findall(r"`([A-Z_]+)`", cells[0]):
                reasons.append(Reason(name, int(cells[1]), cells[2]))
    return reasons


def _clean_comment(text: str) -> str:
    """Proto comment lines as paragraphs; lint directives and what follows are
    notes for maintainers, not for tenants."""
    paragraphs: list[list[str]] = [[]]
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("buf:lint:"):
            break
        if line:
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    return "\n\n".join(" ".join(p) for p in paragraphs if p)


def _summary(description: str) -> str:
    first = description.split("\n\n", 1)[0]
    return re.split(r"(?<=[a-z0-9`)][.])\s+(?=[A-Z])", first, maxsplit=1)[0]


@dataclass
class _Message:
    proto: descriptor_pb2.DescriptorProto
    comment: str
    field_comments: dict[str, str]


@dataclass
class _Descriptors:
    """Messages and enums by full name, and every element's comment."""

    messages: dict[str, _Message] = field(default_factory=dict)
    enums: dict[str, descriptor_pb2.EnumDescriptorProto] = field(default_factory=dict)
    services: dict[str, tuple[descriptor_pb2.ServiceDescriptorProto, str, list[str]]] = field(
        default_factory=dict
    )

    @classmethod
    def load(cls, path: Path) -> "_Descriptors":
        files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
        index = cls()
        for file in files.file:
            comments = {
                tuple(loc.path): _clean_comment(loc.leading_comments or loc.trailing_comments)
                for loc in file.source_code_info.location
            }
            for i, message in enumerate(file.message_type):
                index._add_message(f"{file.package}.{message.name}", message, (4, i), comments)
            for enum in file.enum_type:
                index.enums[f"{file.package}.{enum.name}"] = enum
            for i, service in enumerate(file.service):
                method_comments = [
                    comments.get((6, i, 2, j), "") for j in range(len(service.method))
                ]
                index.services[f"{file.package}.{service.name}"] = (
                    service,
                    comments.get((6, i), ""),
                    method_comments,
                )
        return index

    def _add_message(
        self,
        name: str,
        message: descriptor_pb2.DescriptorProto,
        path: tuple[int, ...],
        comments: dict[tuple[int, ...], str],
    ) -> None:
        field_comments = {
            f.name: comments.get((*path, 2, i), "") for i, f in enumerate(message.field)
        }
        self.messages[name] = _Message(message, comments.get(path, ""), field_comments)
        for i, nested in enumerate(message.nested_type):
            self._add_message(f"{name}.{nested.name}", nested, (*path, 3, i), comments)
        for enum in message.enum_type:
            self.enums[f"{name}.{enum.name}"] = enum


def _is_map(descriptors: _Descriptors, f: FieldProto) -> bool:
    entry = descriptors.messages.get(f.type_name.lstrip("."))
    return entry is not None and entry.proto.options.map_entry


def _always_printed(descriptors: _Descriptors, f: FieldProto) -> bool:
    """Printed even when empty under always_print_primitive_fields: fields
    without presence (not a message, not in a oneof), lists and maps."""
    if f.label == FieldProto.LABEL_REPEATED:
        return True
    return f.type != FieldProto.TYPE_MESSAGE and not f.HasField("oneof_index")


class _SchemaBuilder:
    """Component schemas, one per message and direction: a request's schema
    requires what `field_behavior` marks REQUIRED, a response's what the
    transcoder always prints (and nothing else may appear)."""

    def __init__(self, descriptors: _Descriptors, reasons: list[Reason]) -> None:
        self.descriptors = descriptors
        self.reasons = reasons
        self.schemas: dict[str, Schema] = {}

    def ref(self, type_name: str, response: bool) -> Schema:
        type_name = type_name.lstrip(".")
        if type_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[type_name])
        name = type_name.rsplit(".", 1)[-1] + ("" if response else "Input")
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder, for recursive messages
            self.schemas[name] = self.message(type_name, response)
        return {"$ref": f"#/components/schemas/{name}"}

    def message(
        self, type_name: str, response: bool, exclude: frozenset[str] = frozenset()
    ) -> Schema:
        entry = self.descriptors.messages[type_name]
        properties: Schema = {}
        required = []
        for f in entry.proto.field:
            if f.name in exclude:
                continue
            properties[f.name] = self.field(f, response)
            if entry.field_comments[f.name]:
                properties[f.name]["description"] = entry.field_comments[f.name]
            behaviors = f.options.Extensions[field_behavior_pb2.field_behavior]
            if (
                _always_printed(self.descriptors, f)
                if response
                else field_behavior_pb2.REQUIRED in behaviors
            ):
                required.append(f.name)
        schema: Schema = {"type": "object", "properties": properties}
        if entry.comment:
            schema["description"] = entry.comment
        if required:
            schema["required"] = required
        if response:
            schema["additionalProperties"] = False
        return schema

    def field(self, f: FieldProto, response: bool) -> Schema:
        if _is_map(self.descriptors, f):
            value = self.descriptors.messages[f.type_name.lstrip(".")].proto.field[1]
            return {"type": "object", "additionalProperties": self.single(value, response)}
        if f.label == FieldProto.LABEL_REPEATED:
            return {"type": "array", "items": self.single(f, response)}
        return self.single(f, response)

    def single(self, f: FieldProto, response: bool) -> Schema:
        if f.type == FieldProto.TYPE_MESSAGE:
            return self.ref(f.type_name, response)
        if f.type == FieldProto.TYPE_ENUM:
            enum = self.descriptors.enums[f.type_name.lstrip(".")]
            return {"type": "string", "enum": [v.name for v in enum.value]}
        return dict(_SCALARS[f.type])

    def error(self) -> Schema:
        """AIP-193's `{"code", "message", "details"}`, as the transcoder prints
        a google.rpc.Status. Envoy's own replies are written by hand in the
        gateway config and may leave out an empty map (ErrorInfo.metadata)."""
        for detail in DETAIL_TYPES:
            schema = self.message(detail, response=True)
            schema["properties"] = {
                "@type": {"const": f"type.googleapis.com/{detail}"},
                **schema["properties"],
            }
            fields = self.descriptors.messages[detail].proto.field
            maps = {f.name for f in fields if _is_map(self.descriptors, f)}
            schema["required"] = [
                "@type",
                *(n for n in schema.get("required", []) if n not in maps),
            ]
            self.schemas[detail.rsplit(".", 1)[-1]] = schema
        info = self.schemas["ErrorInfo"]
        # Google's own comments describe other APIs' errors; these are ours.
        info["description"] = "Why the request failed, for programs to act on."
        info["properties"]["domain"] = {"const": DOMAIN}
        reason = info["properties"]["reason"]
        reason["enum"] = sorted({r.reason for r in self.reasons})
        reason["description"] = "\n".join(
            f"- `{r.reason}` ({r.status}): {r.when}" for r in self.reasons
        )
        return {
            "type": "object",
            "required": ["code", "message", "details"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "integer", "description": "The gRPC status code."},
                "message": {"type": "string", "description": "What is wrong and how to fix it."},
                "details": {
                    "type": "array",
                    "items": {
                        "oneOf": [
                            {"$ref": f"#/components/schemas/{d.rsplit('.', 1)[-1]}"}
                            for d in DETAIL_TYPES
                        ]
                    },
                },
            },
        }


def _path_fields(template: str) -> list[str]:
    return [name.split("=", 1)[0] for name in re.findall(r"{([^}]+)}", template)]


def _query_parameters(builder: _SchemaBuilder, message: _Message, skip: set[str]) -> list[Schema]:
    """Fields outside the path and body, as the transcoder reads them from the
    query string (repeated fields repeat the parameter)."""
    parameters = []
    for f in message.proto.field:
        if f.name in skip or f.type == FieldProto.TYPE_MESSAGE:
            continue
        parameter: Schema = {
            "name": f.name,
            "in": "query",
            "schema": builder.field(f, response=False),
        }
        if field_behavior_pb2.REQUIRED in f.options.Extensions[field_behavior_pb2.field_behavior]:
            parameter["required"] = True
        if message.field_comments[f.name]:
            parameter["description"] = message.field_comments[f.name]
        parameters.append(parameter)
    return parameters


def _operation(
    builder: _SchemaBuilder,
    service: str,
    method: descriptor_pb2.MethodDescriptorProto,
    comment: str,
    rule: http_pb2.HttpRule,
    path: str,
    error_statuses: list[int],
) -> Schema:
    request_name = method.input_type.lstrip(".")
    request = builder.descriptors.messages[request_name]
    in_path = _path_fields(path)
    operation: Schema = {
        "operationId": method.name,
        "tags": [service.rsplit(".", 1)[-1]],
        "summary": _summary(comment),
        "description": comment,
    }
    by_name = {f.name: f for f in request.proto.field}
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": builder.field(by_name[name], response=False),
            "description": request.field_comments[name],
        }
        for name in in_path
    ]
    if rule.body == "*":
        body = builder.message(request_name, response=False, exclude=frozenset(in_path))
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    else:
        parameters += _query_parameters(builder, request, {*in_path, rule.body})
        if rule.body:
            body_field = by_name[rule.body]
            if body_field.type_name.lstrip(".") == HTTP_BODY:
                types = RAW_BODY_TYPES.get(f"{service}.{method.name}", ["*/*"])
                content = {t: {"schema": {"type": "string"}} for t in types}
            else:
                content = {"application/json": {"schema": builder.field(body_field, False)}}
            operation["requestBody"] = {"required": True, "content": content}
    if parameters:
        operation["parameters"] = parameters
    if method.output_type.lstrip(".") == HTTP_BODY:
        success: Schema = {"*/*": {"schema": {"type": "string"}}}
    else:
        success = {"application/json": {"schema": builder.ref(method.output_type, True)}}
    operation["responses"] = {
        "200": {"description": "Success.", "content": success},
        **{str(s): {"$ref": f"#/components/responses/Error{s}"} for s in error_statuses},
    }
    session: Schema = {SESSION_SCHEME: []}
    if rule.WhichOneof("pattern") != "get":
        session[CSRF_SCHEME] = []
    if path.startswith(PUBLIC_PREFIX):
        operation["security"] = [{SECURITY_SCHEME: []}, session]
    elif f"/{service}/{method.name}" in SESSION_ONLY:
        operation["security"] = [session]
    else:
        operation["security"] = []
    if not operation["security"]:
        operation["responses"].pop("401", None)
    return operation


def build_document(descriptor: Path, api_doc: str, services: list[str] = SERVICES) -> Schema:
    descriptors = _Descriptors.load(descriptor)
    reasons = read_reasons(api_doc)
    builder = _SchemaBuilder(descriptors, reasons)
    error_statuses = sorted({r.status for r in reasons} | ENVOY_STATUSES)
    paths: dict[str, Schema] = {
        OPENAPI_PATH: {
            "get": {
                "operationId": "GetOpenApiDocument",
                "tags": ["Documentation"],
                "summary": "This document. Needs no API key.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        }
    }
    tags = [{"name": "Documentation", "description": "The API's own description."}]
    for service_name in services:
        service, service_comment, method_comments = descriptors.services[service_name]
        tags.append({"name": service.name, "description": service_comment})
        for method, comment in zip(service.method, method_comments, strict=True):
            rule = method.options.Extensions[annotations_pb2.http]
            verb = rule.WhichOneof("pattern")
            if verb is None or verb == "custom":
                continue
            path = getattr(rule, verb)
            paths.setdefault(re.sub(r"{([^}=]+)=[^}]*}", r"{\1}", path), {})[verb] = _operation(
                builder, service_name, method, comment, rule, path, error_statuses
            )
    error = builder.error()
    by_status: dict[int, list[str]] = {}
    for r in reasons:
        by_status.setdefault(r.status, []).append(r.reason)
    responses = {
        f"Error{s}": {
            "description": ", ".join(f"`{r}`" for r in by_status.get(s, []))
            or "Envoy's own reply, with empty `details`.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for s in error_statuses
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Clarion API",
            "version": "v1",
            "description": "Multi-tenant notifications: email, SMS, voice, Slack and WhatsApp. "
            "Generated from the protos in proto/clarion/v1 by gateway/openapi.py.",
        },
        "servers": [{"url": "/"}],
        "tags": tags,
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                SECURITY_SCHEME: {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                SESSION_SCHEME: {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "clarion_session",
                    "description": "The portal's session, set by signup, login and accepting "
                    "an invitation.",
                },
                CSRF_SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRF-Token",
                    "description": "The session's csrf_token; needed with the cookie on "
                    "every method that is not a GET.",
                },
            },
            "schemas": {"Error": error, **dict(sorted(builder.schemas.items()))},
            "responses": responses,
        },
    }


def render(document: Schema) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> None:
    descriptor, api_doc, out = (Path(a) for a in argv)
    out.write_text(render(build_document(descriptor, api_doc.read_text())))


if __name__ == "__main__":
    main(sys.argv[1:])
