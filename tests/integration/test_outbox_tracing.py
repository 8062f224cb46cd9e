"""A workflow start left to the outbox sweeper joins the trace of the
request that stored it: the outbox row keeps the trace context."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor

from contracts.workflows import notification_workflow_id
from runner.stack import Stack
from server import tracing
from server.services.dispatch import notification_start
from server.store.db import Database
from tests.integration.test_dispatch_outbox import (
    outbox_for,
    stored_notification,
    workflow_exists,
)


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield provider, exporter
    tracing.install(None)


async def test_a_swept_start_continues_the_requests_trace(
    db: Database,
    stack: Stack,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    temporal = await Client.connect(
        f"127.0.0.1:{stack.ports.temporal}",
        interceptors=[TracingInterceptor(provider.get_tracer("test"))],
    )
    notification_id = await stored_notification(db, age=timedelta(0))
    outbox = outbox_for(db, temporal)
    with provider.get_tracer("test").start_as_current_span("request") as request:
        async with db.transaction() as session:
            await outbox.add(session, [notification_start(notification_id, urgent=False)])
    # The request's own start never ran (its server died): the sweeper's does.
    assert await outbox.sweep(older_than=timedelta(0)) >= 1
    assert await workflow_exists(temporal, notification_id)

    request_context = request.get_span_context()
    starts = [
        s
        for s in exporter.get_finished_spans()
        if s.name == "StartWorkflow:NotificationWorkflow"
        and s.attributes
        and s.attributes.get("temporalWorkflowID") == notification_workflow_id(notification_id)
    ]
    assert len(starts) == 1
    assert starts[0].context.trace_id == request_context.trace_id
    assert starts[0].parent is not None and starts[0].parent.span_id == request_context.span_id
