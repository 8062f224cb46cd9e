"""What metrics and tracing add to a call, in microseconds (no stack needed):

- the API interceptor's metrics for a send (`_observe`: a histogram and a
  counter) and a provider call's (a histogram and a counter);
- with tracing off, the tracing hooks on the send path (`client_span`,
  `carrier`) and the log filter;
- with tracing on, a round trip through an in-process grpc.aio server with and
  without the tracing interceptor (spans go to an in-memory exporter).

    .venv/bin/python -m bench.telemetry_overhead [--calls 20000]"""

import argparse
import asyncio
import logging
import time
import timeit
from collections.abc import Callable
from typing import Any

import grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from server import metrics, tracing
from server.api.auth import Caller, _observe
from server.api.limits import SEND
from server.domain.limits import TenantLimits
from server.log_redaction import TraceIdFilter

_METHOD = "/clarion.v1.NotificationService/SendNotification"


def per_call_us(stmt: Callable[[], Any], calls: int) -> float:
    return min(timeit.repeat(stmt, number=calls, repeat=5)) / calls * 1e6


def _spanless() -> None:
    with tracing.client_span("provider twilio", {}):
        pass
    tracing.carrier()


async def _round_trips(calls: int, interceptors: list[grpc.aio.ServerInterceptor]) -> float:
    async def noop(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    server = grpc.aio.server(interceptors=interceptors)
    handler = grpc.unary_unary_rpc_method_handler(noop)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(
            "clarion.v1.NotificationService", {"SendNotification": handler}
        )]
    )  # fmt: skip
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(_METHOD)
        metadata = (("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),)
        for _ in range(200):
            await call(b"x", metadata=metadata)
        started = time.perf_counter()
        for _ in range(calls):
            await call(b"x", metadata=metadata)
        elapsed = time.perf_counter() - started
    await server.stop(None)
    return elapsed / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    calls = parser.parse_args().calls
    caller = Caller("tnt_bench", "key_bench", TenantLimits(rates={}, daily_quota=0))
    assert SEND == _METHOD
    record = logging.LogRecord("bench", logging.INFO, __file__, 1, "m", None, None)
    log_filter = TraceIdFilter()
    attempt = metrics.PROVIDER_CALL_SECONDS.labels("sms", "twilio", "accepted")

    def provider_metrics() -> None:
        attempt.observe(0.01)
        metrics.ATTEMPTS.labels("sms", "twilio", "accepted").inc()

    rows = [
        ("send metrics (_observe)", lambda: _observe(_METHOD, "OK", caller, 0.003)),
        ("provider call metrics", provider_metrics),
        ("tracing off: span + carrier", _spanless),
        ("log filter (trace id), per line", lambda: log_filter.filter(record)),
    ]
    for name, stmt in rows:
        print(f"{name:<34}{per_call_us(stmt, calls):7.2f} µs")

    # Alternated and the best of three each: the box is shared.
    rpc_calls = max(calls // 10, 500)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    tracing.install(provider)
    bare, traced = [], []
    for _ in range(3):
        bare.append(asyncio.run(_round_trips(rpc_calls, [])))
        traced.append(asyncio.run(_round_trips(rpc_calls, [tracing.GrpcTracingInterceptor()])))
    print(f"{'gRPC round trip, no interceptor':<34}{min(bare):7.1f} µs")
    print(f"{'gRPC round trip, tracing on':<34}{min(traced):7.1f} µs")


if __name__ == "__main__":
    main()
