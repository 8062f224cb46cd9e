"""Builds the configuration of the two Envoys: the tenant API gateway and the
provider webhook gateway. Envoy reads JSON as well as YAML, and a Python
builder keeps the shared parts (listener, clusters, local replies) in one place."""

import json
from pathlib import Path
from typing import Any

TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
TRANSCODER_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder"
)
SERVICES = [
    "clarion.v1.NotificationService",
    "clarion.v1.ChannelService",
    "clarion.v1.TenantService",
    "clarion.v1.TemplateService",
]
# Headers the API server trusts and a client must never set.
SPOOFABLE_HEADERS = ["x-tenant-id", "x-caller-id"]
MAX_BODY_BYTES = 16 * 1024 * 1024
# A million CSV rows of recipients and a few variables fit well within this.
MAX_UPLOAD_BYTES = 512 * 1024 * 1024

# The OpenAPI document (gateway/openapi.py), served from the file beside the descriptor.
OPENAPI_PATH = "/api/v1/openapi.json"
MAX_DIRECT_RESPONSE_BYTES = 1024 * 1024

# Envoy's own replies, in the API's JSON error shape: HTTP status → gRPC code.
LOCAL_REPLY_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 413: 3, 429: 8, 503: 14, 504: 4}


def transcoder(descriptor: Path) -> dict[str, Any]:
    return {
        "@type": TRANSCODER_TYPE,
        "proto_descriptor": str(descriptor),
        "services": SERVICES,
        "print_options": {
            "preserve_proto_field_names": True,
            "always_print_primitive_fields": True,
        },
        "convert_grpc_status": True,
        # Route on the JSON path, not on the gRPC path the transcoder rewrites it to.
        "match_incoming_request_route": True,
        "request_validation_options": {
            "reject_unknown_method": True,
            "reject_unknown_query_parameters": True,
        },
        "max_request_body_size": MAX_BODY_BYTES,
        "max_response_body_size": MAX_BODY_BYTES,
    }


def _status_filter(status: int) -> dict[str, Any]:
    return {
        "status_code_filter": {
            "comparison": {
                "op": "EQ",
                "value": {"default_value": status, "runtime_key": f"clarion.local_reply.{status}"},
            }
        }
    }


def _local_reply_config() -> dict[str, Any]:
    mappers: list[dict[str, Any]] = [
        # Native gRPC callers get Envoy's gRPC replies untouched. REST requests
        # carry x-envoy-original-path once the transcoder has rewritten them.
        {
            "filter": {
                "and_filter": {
                    "filters": [
                        {
                            "header_filter": {
                                "header": {
                                    "name": "content-type",
                                    "string_match": {"prefix": "application/grpc"},
                                }
                            }
                        },
                        {
                            "header_filter": {
                                "header": {
                                    "name": "x-envoy-original-path",
                                    "present_match": True,
                                    "invert_match": True,
                                }
                            }
                        },
                    ]
                }
            }
        }
    ]
    for status, code in LOCAL_REPLY_CODES.items():
        mappers.append(
            {
                "filter": _status_filter(status),
                "body_format_override": {
                    "json_format": {
                        "code": code,
                        "message": "%LOCAL_REPLY_BODY%",
                        "details": [],
                    },
                    "content_type": "application/json",
                },
            }
        )
    return {"mappers": mappers}


def _route(prefix: str, cluster: str = "api") -> dict[str, Any]:
    return {"match": {"prefix": prefix}, "route": {"cluster": cluster, "timeout": "30s"}}


def _openapi_route(document: Path) -> dict[str, Any]:
    """The API's description, needing no key. The transcoder would refuse a
    path that is no gRPC method, so it is off on this route."""
    return {
        "match": {
            "path": OPENAPI_PATH,
            "headers": [{"name": ":method", "string_match": {"exact": "GET"}}],
        },
        "direct_response": {"status": 200, "body": {"filename": str(document)}},
        "response_headers_to_add": [
            {
                "header": {"key": "content-type", "value": "application/json"},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ],
        "typed_per_filter_config": {
            TRANSCODER: {
                "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
                "disabled": True,
            }
        },
    }


def _cluster(name: str, port: int, http2: bool = True) -> dict[str, Any]:
    """An upstream process: an API server in HTTP/2 (gRPC), or the callbacks
    receiver in HTTP/1.1."""
    protocol: dict[str, Any] = (
        {"http2_protocol_options": {}} if http2 else {"http_protocol_options": {}}
    )
    # Envoy's default of 1,024 connections, requests and queued requests per
    # cluster is below what a provider's webhook fleet sends during a bulk
    # send; past it Envoy answers 503 and the provider retries later.
    limit = 8192
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "circuit_breakers": {
            "thresholds": [
                {
                    "max_connections": limit,
                    "max_pending_requests": limit,
                    "max_requests": limit,
                }
            ]
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3."
                "HttpProtocolOptions",
                "explicit_http_config": protocol,
            }
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": "127.0.0.1", "port_value": port}
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }


# A gRPC metadata key may only hold 0-9 a-z _ . - (gRPC's PROTOCOL-HTTP2
# spec); HTTP header names may hold more ("a|b"). The gRPC server refuses a
# request with such a header, which Envoy answers with a 500. No header of
# ours looks like that, so they are dropped before the transcoder.
_DROP_NON_GRPC_HEADERS: dict[str, Any] = {
    "name": "envoy.filters.http.lua",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {
            "inline_string": """
function envoy_on_request(handle)
  local drop = {}
  for name, _ in pairs(handle:headers()) do
    if string.sub(name, 1, 1) ~= ":" and string.find(name, "[^0-9a-z_.-]") then
      drop[#drop + 1] = name
    end
  end
  for _, name in ipairs(drop) do
    handle:headers():remove(name)
  end
end
"""
        },
    },
}


def api_gateway_config(
    *, listen_port: int, admin_port: int, grpc_port: int, bulk_port: int, descriptor: Path
) -> dict[str, Any]:
    """The tenant API's Envoy: JSON transcoded to the gRPC API server on
    `grpc_port`, except bulk sends and uploads, which go to the same server in
    its own process on `bulk_port`."""
    routes: list[dict[str, Any]] = [
        # Uploads stream to the server; the transcoder's body limit does not
        # apply to streams, so a declared size over the cap is refused here.
        {
            "match": {
                "path": "/api/v1/notifications/bulk:upload",
                "headers": [
                    {
                        "name": "content-length",
                        "range_match": {"start": MAX_UPLOAD_BYTES + 1, "end": 2**62},
                    }
                ],
            },
            "direct_response": {
                "status": 413,
                "body": {"inline_string": f"uploads are limited to {MAX_UPLOAD_BYTES} bytes"},
            },
        },
        # Bulk ingestion has its own API process (see runner/stack.py).
        # A million-row upload streams for minutes: no route timeout.
        {
            "match": {"path": "/api/v1/notifications/bulk:upload"},
            "route": {"cluster": "bulk", "timeout": "0s"},
        },
        {
            "match": {
                "path": "/api/v1/notifications/bulk",
                "headers": [{"name": ":method", "string_match": {"exact": "POST"}}],
            },
            "route": {"cluster": "bulk", "timeout": "30s"},
        },
        _openapi_route(descriptor.with_name("openapi.json")),
        _route("/api/v1/"),
        _route("/portal/signup"),
    ]
    filters = [
        _DROP_NON_GRPC_HEADERS,
        # Runs after the transcoder on responses: keeps gRPC trailers out of REST replies.
        {
            "name": "envoy.filters.http.header_mutation",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http."
                "header_mutation.v3.HeaderMutation",
                "mutations": {
                    "response_mutations": [
                        {"remove": "grpc-status"},
                        {"remove": "grpc-message"},
                        {"remove": "grpc-status-details-bin"},
                    ]
                },
            },
        },
        {"name": TRANSCODER, "typed_config": transcoder(descriptor)},
    ]
    return _bootstrap(
        listen_port=listen_port,
        admin_port=admin_port,
        routes=routes,
        filters=filters,
        clusters=[_cluster("api", grpc_port), _cluster("bulk", bulk_port)],
    )


def webhook_gateway_config(
    *, listen_port: int, admin_port: int, callbacks_port: int
) -> dict[str, Any]:
    """The providers' Envoy: webhooks proxied untouched to the callbacks
    process on `callbacks_port`, which checks signatures over the exact URL
    and bytes. A separate Envoy, so that a bulk send's receipt storm (two
    webhooks per SMS) never queues tenants' requests behind it."""
    return _bootstrap(
        listen_port=listen_port,
        admin_port=admin_port,
        routes=[_route("/callbacks/", cluster="callbacks")],
        filters=[],
        clusters=[_cluster("callbacks", callbacks_port, http2=False)],
    )


def _bootstrap(
    *,
    listen_port: int,
    admin_port: int,
    routes: list[dict[str, Any]],
    filters: list[dict[str, Any]],
    clusters: list[dict[str, Any]],
) -> dict[str, Any]:
    """One listener on 127.0.0.1 with the given routes and HTTP filters (the
    router is added last), errors in the API's JSON shape, and an admin port."""
    connection_manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "codec_type": "AUTO",
        # At the edge: clients cannot forge x-forwarded-for or -proto.
        "use_remote_address": True,
        "local_reply_config": _local_reply_config(),
        "route_config": {
            "name": "clarion",
            "max_direct_response_body_size_bytes": MAX_DIRECT_RESPONSE_BYTES,
            "request_headers_to_remove": SPOOFABLE_HEADERS,
            "request_headers_to_add": [
                {
                    "header": {"key": "x-forwarded-host", "value": "%REQ(:AUTHORITY)%"},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            ],
            "virtual_hosts": [{"name": "clarion", "domains": ["*"], "routes": routes}],
        },
        "http_filters": [
            *filters,
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            },
        ],
    }
    return {
        "admin": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}
        },
        "static_resources": {
            "listeners": [
                {
                    "name": "http",
                    "address": {
                        "socket_address": {"address": "127.0.0.1", "port_value": listen_port}
                    },
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": connection_manager,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": clusters,
        },
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=1))
    return path
