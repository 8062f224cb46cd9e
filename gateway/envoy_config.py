"""Builds the configuration of the two Envoys: the tenant API gateway and the
provider webhook gateway. Envoy reads JSON as well as YAML, and a Python
builder keeps the shared parts (listener, clusters, local replies) in one place."""

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway import portal_routes
from server.domain import body_limits

TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
TRANSCODER_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder"
)
SERVICES = [
    "clarion.v1.NotificationService",
    "clarion.v1.ChannelService",
    "clarion.v1.TenantService",
    "clarion.v1.TemplateService",
    "clarion.v1.PortalService",
    "clarion.v1.WebhookService",
    "clarion.v1.AlertService",
    "clarion.v1.TeamService",
]
# Headers the API server trusts and a client must never set.
SPOOFABLE_HEADERS = ["x-tenant-id", "x-caller-id"]
# The same limits the API servers apply (gRPC receive size, upload bytes).
# Bodies are capped by the buffer filter: the transcoder streams unary JSON
# through, so its own max_request_body_size does not stop a large one.
MAX_BODY_BYTES = body_limits.MAX_JSON_BODY_BYTES
MAX_BULK_BODY_BYTES = body_limits.MAX_BULK_BODY_BYTES
BUFFER = "envoy.filters.http.buffer"
BUFFER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer"
BUFFER_PER_ROUTE_TYPE = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute"
# A million CSV rows of recipients and a few variables fit well within this.
MAX_UPLOAD_BYTES = body_limits.MAX_UPLOAD_BYTES
LOCAL_RATE_LIMIT = "envoy.filters.http.local_ratelimit"
LOCAL_RATE_LIMIT_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
)
# Signups per client address (the TCP peer, which a client cannot forge):
# a burst, then one every SIGNUP_REFILL_SECONDS. Enough for a team and for
# the test suite's tenants; a flood from one address gets 429 from Envoy
# without reaching Python. Buckets are per Envoy process.
SIGNUP_BURST = 60
SIGNUP_REFILL_SECONDS = 1
# Slow clients: all request headers within this, and no stream or
# connection silent for longer than these.
REQUEST_HEADERS_TIMEOUT = "10s"
STREAM_IDLE_TIMEOUT = "30s"
CONNECTION_IDLE_TIMEOUT = "120s"
# An upload pauses while the server stores a batch of rows (up to 25 s).
UPLOAD_IDLE_TIMEOUT = "60s"
# Overload manager: Envoy's heap here is 8-26 MB; past these shares of this
# ceiling it first shortens idle timeouts, then closes keep-alive connections,
# then refuses new requests and connections.
MAX_HEAP_BYTES = 1024 * 1024 * 1024
MAX_DOWNSTREAM_CONNECTIONS = 10_000

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
        "max_request_body_size": MAX_BULK_BODY_BYTES,
        "max_response_body_size": MAX_BULK_BODY_BYTES,
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
    mappers.append(
        _worded_reply(
            {
                "and_filter": {
                    "filters": [
                        _status_filter(429),
                        # The rate limit runs before the transcoder rewrites :path.
                        {
                            "header_filter": {
                                "header": {
                                    "name": ":path",
                                    "string_match": {"prefix": "/portal/signup"},
                                }
                            }
                        },
                    ]
                }
            },
            LOCAL_REPLY_CODES[429],
            f"too many signups from your address; at most {SIGNUP_BURST} at once, then one "
            f"every {SIGNUP_REFILL_SECONDS} s. Try again later",
            reason="SIGNUP_RATE_LIMITED",
            headers={"retry-after": str(SIGNUP_REFILL_SECONDS)},
        )
    )
    # The buffer filter's 413 says "Payload Too Large"; name the limits.
    mappers.append(
        _worded_reply(
            _status_filter(413),
            LOCAL_REPLY_CODES[413],
            f"the request body is larger than the API accepts: {MAX_BODY_BYTES} bytes "
            f"({MAX_BODY_BYTES // 2**20} MiB), or {MAX_BULK_BODY_BYTES} bytes "
            f"({MAX_BULK_BODY_BYTES // 2**20} MiB) for POST /api/v1/notifications/bulk; "
            "send more recipients as a CSV with POST /api/v1/notifications/bulk:upload",
            reason="REQUEST_TOO_LARGE",
            exclude_upload=True,
        )
    )
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


def _worded_reply(
    match: dict[str, Any],
    code: int,
    message: str,
    *,
    reason: str,
    headers: dict[str, str] | None = None,
    exclude_upload: bool = False,
) -> dict[str, Any]:
    """A local reply in the API's words, with its reason in an ErrorInfo as
    the API servers send them."""
    if exclude_upload:
        # The upload route's own 413 already names its (larger) limit.
        match = {
            "and_filter": {
                "filters": [
                    match,
                    {
                        "header_filter": {
                            "header": {
                                # Before the transcoder, :path is still the JSON path.
                                "name": ":path",
                                "string_match": {"prefix": "/api/v1/notifications/bulk:upload"},
                                "invert_match": True,
                            }
                        }
                    },
                ]
            }
        }
    mapper: dict[str, Any] = {
        "filter": match,
        "body": {"inline_string": message},
        "body_format_override": {
            "json_format": {
                "code": code,
                "message": "%LOCAL_REPLY_BODY%",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": reason,
                        "domain": "clarion",
                    }
                ],
            },
            "content_type": "application/json",
        },
    }
    if headers:
        mapper["headers_to_add"] = [
            {"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            for k, v in headers.items()
        ]
    return mapper


def _signup_rate_limit() -> dict[str, Any]:
    """Per-route config of the local rate limit filter: one token bucket per
    client address (created on first sight, up to max_dynamic_descriptors)."""
    bucket = {
        "max_tokens": SIGNUP_BURST,
        "tokens_per_fill": 1,
        "fill_interval": f"{SIGNUP_REFILL_SECONDS}s",
    }
    enabled = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
    return {
        "@type": LOCAL_RATE_LIMIT_TYPE,
        "stat_prefix": "signup",
        # The default bucket is required, but only the per-address one is consumed.
        "token_bucket": {"max_tokens": 1_000_000, "tokens_per_fill": 1_000_000,
                         "fill_interval": "1s"},
        "filter_enabled": {**enabled, "runtime_key": "clarion.signup_limit.enabled"},
        "filter_enforced": {**enabled, "runtime_key": "clarion.signup_limit.enforced"},
        "always_consume_default_token_bucket": False,
        "rate_limits": [{"actions": [{"remote_address": {}}]}],
        # An empty value matches any address, each with its own bucket.
        "descriptors": [{"entries": [{"key": "remote_address"}], "token_bucket": bucket}],
        "max_dynamic_descriptors": 100_000,
    }  # fmt: skip


def _route(prefix: str, cluster: str = "api") -> dict[str, Any]:
    return {"match": {"prefix": prefix}, "route": {"cluster": cluster, "timeout": "30s"}}


# The portal's JSON methods under /portal (PortalService), by exact path and
# method, so that the portal's pages can live beside them.
PORTAL_API = [
    ("/portal/login", "POST"),
    ("/portal/logout", "POST"),
    ("/portal/session", "GET"),
    ("/portal/invitations:accept", "POST"),
]


def _portal_api_route(path: str, method: str) -> dict[str, Any]:
    return {
        "match": {
            "path": path,
            "headers": [{"name": ":method", "string_match": {"exact": method}}],
        },
        "route": {"cluster": "api", "timeout": "30s"},
    }


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


def _cluster(name: str, port: int | list[int], http2: bool = True) -> dict[str, Any]:
    """An upstream process: an API server in HTTP/2 (gRPC), or the callbacks
    receiver in HTTP/1.1; several ports are replicas, taken in turn."""
    ports = port if isinstance(port, list) else [port]
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
                                    "socket_address": {"address": "127.0.0.1", "port_value": p}
                                }
                            }
                        }
                        for p in ports
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
    *,
    listen_port: int,
    admin_port: int,
    grpc_port: int | list[int],
    bulk_port: int,
    descriptor: Path,
    otlp_endpoint: str = "",
) -> dict[str, Any]:
    """The tenant API's Envoy: JSON transcoded to the gRPC API server on
    `grpc_port` (replicas on several, in turn), except bulk sends and
    uploads, which go to the same server in its own process on `bulk_port`.
    With `otlp_endpoint`, each request is traced (docs/operations.md)."""
    routes: list[dict[str, Any]] = [
        # The portal's pages and files, before any route that sends /portal/ to the API.
        *portal_routes.routes(disabled_filters=[TRANSCODER]),
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
            "route": {"cluster": "bulk", "timeout": "0s", "idle_timeout": UPLOAD_IDLE_TIMEOUT},
            # Streamed with backpressure, never buffered whole.
            "typed_per_filter_config": {BUFFER: {"@type": BUFFER_PER_ROUTE_TYPE, "disabled": True}},
        },
        {
            "match": {
                "path": "/api/v1/notifications/bulk",
                "headers": [{"name": ":method", "string_match": {"exact": "POST"}}],
            },
            "route": {"cluster": "bulk", "timeout": "30s"},
            "typed_per_filter_config": {
                BUFFER: {
                    "@type": BUFFER_PER_ROUTE_TYPE,
                    "buffer": {"max_request_bytes": MAX_BULK_BODY_BYTES},
                }
            },
        },
        _openapi_route(descriptor.with_name("openapi.json")),
        _route("/api/v1/"),
        {
            **_route("/portal/signup"),
            "typed_per_filter_config": {LOCAL_RATE_LIMIT: _signup_rate_limit()},
        },
        *[_portal_api_route(path, method) for path, method in PORTAL_API],
    ]
    filters = [
        _DROP_NON_GRPC_HEADERS,
        # Before the transcoder, so a refused signup is never buffered or
        # transcoded. Acts only on routes that configure it.
        {
            "name": LOCAL_RATE_LIMIT,
            "typed_config": {"@type": LOCAL_RATE_LIMIT_TYPE, "stat_prefix": "local_rate_limit"},
        },
        # Caps request bodies (413) before they are transcoded.
        {
            "name": BUFFER,
            "typed_config": {"@type": BUFFER_TYPE, "max_request_bytes": MAX_BODY_BYTES},
        },
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
        clusters=[
            _cluster("api", grpc_port),
            _cluster("bulk", bulk_port),
            *([_otlp_cluster(otlp_endpoint)] if otlp_endpoint else []),
        ],
        tracing=_tracing() if otlp_endpoint else None,
    )


def _tracing() -> dict[str, Any]:
    """Envoy's OpenTelemetry tracer: a span per request, exported over
    OTLP/gRPC; the request goes on with a W3C `traceparent` naming it, which
    the API server continues."""
    return {
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "grpc_service": {"envoy_grpc": {"cluster_name": "otlp"}, "timeout": "2s"},
                "service_name": "clarion-envoy",
            },
        }
    }


def _otlp_cluster(endpoint: str) -> dict[str, Any]:
    """The OTLP/gRPC collector at `endpoint` (http://host:port, or https://)."""
    url = urlsplit(endpoint)
    cluster: dict[str, Any] = {
        "name": "otlp",
        "type": "STRICT_DNS",
        "connect_timeout": "2s",
        "http2_protocol_options": {},
        "load_assignment": {
            "cluster_name": "otlp",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {
                                        "address": url.hostname or "127.0.0.1",
                                        "port_value": url.port or 4317,
                                    }
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }
    if url.scheme == "https":
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                "UpstreamTlsContext",
                "sni": url.hostname,
            },
        }
    return cluster


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
    tracing: dict[str, Any] | None = None,
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
        "request_headers_timeout": REQUEST_HEADERS_TIMEOUT,
        "stream_idle_timeout": STREAM_IDLE_TIMEOUT,
        "common_http_protocol_options": {"idle_timeout": CONNECTION_IDLE_TIMEOUT},
        "local_reply_config": _local_reply_config(),
        **({"tracing": tracing} if tracing else {}),
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
        "overload_manager": _overload_manager(),
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


def _overload_manager() -> dict[str, Any]:
    heap = "envoy.resource_monitors.fixed_heap"

    def above(share: float) -> list[dict[str, Any]]:
        return [{"name": heap, "threshold": {"value": share}}]

    return {
        "refresh_interval": "0.25s",
        "resource_monitors": [
            {
                "name": heap,
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors."
                    "fixed_heap.v3.FixedHeapConfig",
                    "max_heap_size_bytes": MAX_HEAP_BYTES,
                },
            },
            {
                "name": "envoy.resource_monitors.global_downstream_max_connections",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors."
                    "downstream_connections.v3.DownstreamConnectionsConfig",
                    "max_active_downstream_connections": MAX_DOWNSTREAM_CONNECTIONS,
                },
            },
        ],
        "actions": [
            {
                # Idle connections and streams get as little as a tenth of their timeout.
                "name": "envoy.overload_actions.reduce_timeouts",
                "triggers": [
                    {
                        "name": heap,
                        "scaled": {"scaling_threshold": 0.8, "saturation_threshold": 0.95},
                    }
                ],
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.config.overload.v3."
                    "ScaleTimersOverloadActionConfig",
                    "timer_scale_factors": [
                        {"timer": timer, "min_scale": {"value": 10}}
                        for timer in (
                            "HTTP_DOWNSTREAM_CONNECTION_IDLE",
                            "HTTP_DOWNSTREAM_STREAM_IDLE",
                        )
                    ],
                },
            },
            {"name": "envoy.overload_actions.disable_http_keepalive", "triggers": above(0.92)},
            {"name": "envoy.overload_actions.stop_accepting_requests", "triggers": above(0.95)},
        ],
        "loadshed_points": [
            {"name": "envoy.load_shed_points.tcp_listener_accept", "triggers": above(0.95)}
        ],
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=1))
    return path
