"""OpenTelemetry tracing, off unless an OTLP endpoint is configured
(CLARION_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT). One trace runs from
Envoy's span through the API server's (continuing the W3C `traceparent`
Envoy sends), the workflow start (the outbox row keeps the context for a
sweeper's start), the workflow and its activity, to the provider call.

Off, nothing here creates a span or an object per call: the interceptors
are not installed and `client_span`/`carrier` return at once."""

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_tracer: trace.Tracer | None = None


def configure_tracing(service: str, endpoint: str) -> bool:
    """Exports this process's spans to `endpoint` (OTLP/gRPC, e.g.
    http://127.0.0.1:4317) as `service`; does nothing without one."""
    if not endpoint:
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    install(provider)
    return True


def install(provider: TracerProvider | None) -> None:
    """Traces through `provider` (tests and benchmarks pass one with their
    own exporter); None turns tracing off again."""
    global _tracer
    if provider is None:
        _tracer = None
        return
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        # The global provider (Temporal's interceptor uses it) is set once.
        trace.set_tracer_provider(provider)
    _tracer = provider.get_tracer("clarion")


def enabled() -> bool:
    return _tracer is not None


def flush() -> None:
    """Exports the spans still batched; for an exit that skips atexit."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush()


@contextmanager
def client_span(name: str, attributes: Mapping[str, str]) -> Iterator[None]:
    """A span around an outgoing call (a provider's API), when tracing is on."""
    if _tracer is None:
        yield
        return
    with _tracer.start_as_current_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes):
        yield


def carrier() -> dict[str, str] | None:
    """The current trace context as W3C headers, to store with deferred work."""
    if _tracer is None:
        return None
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers or None


def within(
    headers: Mapping[str, str] | None, call: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """`call`, run in the trace context `headers` carry (from `carrier`)."""
    if _tracer is None or not headers:
        return call

    async def traced() -> None:
        token = context.attach(propagate.extract(headers))
        try:
            await call()
        finally:
            context.detach(token)

    return traced


Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]


class GrpcTracingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """A server span per RPC, child of the caller's `traceparent` (Envoy's
    span). Installed only when tracing is on; outermost, so the span covers
    authentication, limits and the handler."""

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or _tracer is None:
            return handler
        streaming = handler.stream_unary is not None
        inner = handler.stream_unary if streaming else handler.unary_unary
        if inner is None:
            return handler
        method: str = handler_call_details.method
        parent = propagate.extract(dict(handler_call_details.invocation_metadata or ()))
        tracer = _tracer

        async def traced(request: Any, servicer_context: grpc.aio.ServicerContext) -> Any:
            service, _, name = method.lstrip("/").partition("/")
            with tracer.start_as_current_span(
                method.lstrip("/"),
                context=parent,
                kind=trace.SpanKind.SERVER,
                attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
            ):
                return await inner(request, servicer_context)

        wrap = (
            grpc.stream_unary_rpc_method_handler
            if streaming
            else grpc.unary_unary_rpc_method_handler
        )
        return wrap(
            traced,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
