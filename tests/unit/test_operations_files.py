"""The alerting rules and the Grafana dashboard in docs/operations/ name
only metrics Clarion exports (promtool is not available here, so the
expressions' metric names are checked against the registry)."""

import json
import re
from pathlib import Path

import yaml

from server.metrics import known_metric_names

DOCS = Path(__file__).resolve().parents[2] / "docs"
# Prometheus' own series, not Clarion's.
BUILTIN = {"up"}
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "bool", "offset",
             "group_left", "group_right", "le", "inf", "nan"}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects: identifiers that are not
    functions, keywords, grouping labels, label matchers or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group().lower() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


def test_metric_names_are_read_from_expressions() -> None:
    expr = 'histogram_quantile(0.99, sum by (le, x) (rate(a_bucket{m="b c"}[5m]))) / b > 0.5'
    assert metric_names(expr) == {"a_bucket", "b"}


def test_every_alerting_rule_names_exported_metrics() -> None:
    rules = yaml.safe_load((DOCS / "operations" / "prometheus-rules.yml").read_text())
    known = known_metric_names() | BUILTIN
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert alerts
    for rule in alerts:
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= known, (rule["alert"], names - known)
        assert rule["annotations"]["summary"]


def test_every_dashboard_panel_names_exported_metrics() -> None:
    dashboard = json.loads((DOCS / "operations" / "grafana-dashboard.json").read_text())
    known = known_metric_names()
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, panel["title"]
            assert names <= known, (panel["title"], names - known)


def test_operations_guide_lists_every_metric() -> None:
    guide = (DOCS / "operations.md").read_text()
    families = {name for name in known_metric_names() if name.startswith("clarion_")}
    base = {n for n in families if not re.search(r"_(total|created|bucket|sum|count)$", n)}
    missing = [name for name in sorted(base) if f"`{name}" not in guide]
    assert not missing
