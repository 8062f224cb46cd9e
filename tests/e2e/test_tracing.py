"""One trace per send, from Envoy's span through the API server, the
workflow start, the workflow and its activity to the provider call, exported
over OTLP/gRPC to a receiver started here; and the trace id in a log line.

Its own stack, with CLARION_OTLP_ENDPOINT set (tracing is off by default)."""

import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from runner.stack import Ports, Stack
from tests.conftest import TEST_SETTINGS, signup
from tests.e2e.waiting import wait_for, wait_for_status


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace collector that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        with self._lock:
            for resource_spans in request.resource_spans:
                service = next(
                    (
                        a.value.string_value
                        for a in resource_spans.resource.attributes
                        if a.key == "service.name"
                    ),
                    "",
                )
                for scope in resource_spans.scope_spans:
                    self.spans.extend(
                        Span(
                            service, s.name, s.trace_id.hex(), s.span_id.hex(),
                            s.parent_span_id.hex(),
                        )
                        for s in scope.spans
                    )  # fmt: skip
        return trace_service_pb2.ExportTraceServiceResponse()

    def trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, int]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    spans = Receiver()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(spans, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield spans, port
    server.stop(grace=None)


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, receiver: tuple[Receiver, int]
) -> Iterator[Stack]:
    stack = Stack(
        data_dir=tmp_path_factory.mktemp("tracing"),
        ports=Ports.free(),
        overrides={
            **TEST_SETTINGS,
            "CLARION_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver[1]}",
            # The SDK's batch export every 200 ms instead of 5 s.
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
        headless=True,
    )
    stack.start()
    yield stack
    stack.stop()


def test_one_trace_covers_envoy_server_workflow_activity_and_provider(
    platform: Stack, receiver: tuple[Receiver, int]
) -> None:
    spans = receiver[0]
    with httpx.Client(base_url=platform.api_url, timeout=30) as api:
        tenant = signup(api)
        # Twilio answers 503 once, then takes it: the worker logs the retry.
        sent = tenant.post(
            "/api/v1/notifications/send",
            {"recipient": {"phone": "+15005550201"},
             "notification": {"channels": ["sms"], "body": "traced"}},
        )  # fmt: skip
        assert sent.status_code == 200, sent.text
        wait_for_status(tenant, sent.json()["notification_id"], {"delivered"})

    server_span = wait_for(
        lambda: next(
            (
                s
                for s in list(spans.spans)
                if s.name == "clarion.v1.NotificationService/SendNotification"
            ),
            None,
        )
    )
    expected = {
        ("clarion-envoy", None),
        ("clarion-api", "clarion.v1.NotificationService/SendNotification"),
        ("clarion-api", "StartWorkflow:NotificationWorkflow"),
        ("clarion-worker", "RunWorkflow:NotificationWorkflow"),
        ("clarion-worker", "StartActivity:send_delivery"),
        ("clarion-worker", "RunActivity:send_delivery"),
        ("clarion-worker", "provider twilio"),
    }

    def covered() -> set[tuple[str, str | None]]:
        trace = spans.trace(server_span.trace_id)
        seen = {(s.service, s.name) for s in trace} | {
            (s.service, None) for s in trace if s.service == "clarion-envoy"
        }
        return expected - seen

    wait_for(lambda: not covered(), timeout=30)
    trace = spans.trace(server_span.trace_id)
    by_id = {s.span_id: s for s in trace}
    # The server's span continues Envoy's: its parent is Envoy's span.
    assert by_id[server_span.parent_id].service == "clarion-envoy"
    # Both provider calls (the 503 and the success) are in the trace.
    assert sum(s.name == "provider twilio" for s in trace) == 2

    worker_log = (platform.data_dir / "logs" / "worker.log").read_text()
    assert f"trace_id={server_span.trace_id}" in worker_log
