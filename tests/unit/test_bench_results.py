"""bench/results.json, written by `make bench`, names every figure of the
performance targets with its ceiling and ratio. Its numbers depend on the
machine, so only its shape is checked."""

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results.json"

CEILINGS = {
    "envoy_direct_response_rps",
    "noop_handler_rps",
    "raw_start_workflow_per_s",
    "raw_workflow_per_s",
    "raw_workflow_temporal_cpu_ms",
    # The same ceiling again right after the burst, which is compared with it.
    "burst_raw_workflow_per_s",
    "burst_raw_workflow_temporal_cpu_ms",
}
# Each figure with a ceiling, and the ceiling it is a ratio of.
AGAINST = {
    "get_by_id_rps": "noop_handler_rps",
    "burst_delivered_per_s": "burst_raw_workflow_per_s",
    "temporal_cpu_ms_per_send": "burst_raw_workflow_temporal_cpu_ms",
    "accept_per_s_at_p99_100ms": "raw_start_workflow_per_s",
}
LISTS = {
    f"list_{name}_p99_ms"
    for name in ("newest", "channel", "status", "recipient", "time_range", "channel_status")
}
TARGETED = {
    *AGAINST,
    *LISTS,
    "own_cpu_ms_per_send",
    "steady_created_to_delivered_p99_s",
    "bulk_sms_delivered_per_s",
    "bulk_email_delivered_per_s",
    "max_process_rss_mb",
    "isolation_b_delivered_p99_s",
    "isolation_b_accept_p99_ms",
    "isolation_a_mix_over_alone",
}
OTHERS = {"get_by_id_p99_ms", "accept_p99_ms"}


def test_results_name_every_figure_with_its_ceiling_and_target() -> None:
    results = json.loads(RESULTS.read_text())
    figures = results["figures"]
    assert set(figures) == CEILINGS | TARGETED | OTHERS
    for key, figure in figures.items():
        assert {"label", "value", "unit", "ceiling", "ratio", "target", "met"} <= set(figure), key
        assert isinstance(figure["value"], int | float), key
        assert (figure["target"] is not None) == (key in TARGETED), key
        assert figure["ceiling"] == AGAINST.get(key), key
        assert (figure["ratio"] is None) == (key not in AGAINST), key


def test_results_break_cpu_down_by_process_and_plan_every_list() -> None:
    results = json.loads(RESULTS.read_text())
    assert {"burst", "bulk_sms", "bulk_email"} <= set(results["cpu_ms_per_notification"])
    for per_process in results["cpu_ms_per_notification"].values():
        assert {"api", "worker", "callbacks", "temporal", "postgres"} <= set(per_process)
    assert set(results["list_plans"]) == {key[len("list_") : -len("_p99_ms")] for key in LISTS}
    assert {"api", "worker", "temporal"} <= set(results["peak_rss_mb"])
