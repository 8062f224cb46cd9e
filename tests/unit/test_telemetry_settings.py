"""Tenant labels follow CLARION_METRICS_TENANT_LABELS, and Envoy traces
only when an OTLP endpoint is configured."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.envoy_config import api_gateway_config
from server import metrics


@pytest.fixture
def labels() -> Iterator[None]:
    yield
    metrics.configure_tenant_labels("")


@pytest.mark.usefixtures("labels")
def test_tenant_labels_are_off_unless_configured() -> None:
    metrics.configure_tenant_labels("")
    assert metrics.tenant_label("tnt_a") == ""
    metrics.configure_tenant_labels("all")
    assert metrics.tenant_label("tnt_a") == "tnt_a"
    metrics.configure_tenant_labels(" tnt_a, tnt_b ")
    assert [metrics.tenant_label(t) for t in ("tnt_a", "tnt_b", "tnt_c")] == ["tnt_a", "tnt_b", ""]


def _gateway(otlp_endpoint: str) -> tuple[dict[str, object], list[str]]:
    config = api_gateway_config(
        listen_port=1, admin_port=2, grpc_port=3, bulk_port=4,
        descriptor=Path("generated/clarion.binpb"), otlp_endpoint=otlp_endpoint,
    )  # fmt: skip
    listener = config["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return manager, [c["name"] for c in config["static_resources"]["clusters"]]


def test_envoy_traces_only_with_an_endpoint() -> None:
    manager, clusters = _gateway("")
    assert "tracing" not in manager and "otlp" not in clusters
    manager, clusters = _gateway("http://collector.internal:4317")
    assert manager["tracing"]["provider"]["name"] == "envoy.tracers.opentelemetry"  # type: ignore[index]
    assert "otlp" in clusters
