"""schemathesis against the live stack through Envoy, with a real key: every
operation of the served OpenAPI document gets valid and invalid requests,
and every answer must be no 5xx, a documented status and a documented body.

Bounded here (a few examples per operation, a fixed seed); `make fuzz` sets
CLARION_FUZZ_EXAMPLES higher. All failures are collected and reported
together, grouped by check, status and message, instead of stopping at the
first."""

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from runner.stack import Stack
from tests.conftest import signup

EXAMPLES = int(os.environ.get("CLARION_FUZZ_EXAMPLES", "10"))
SEED = int(os.environ.get("CLARION_FUZZ_SEED", "20261201"))
DOCUMENT = "/api/v1/openapi.json"
# Where a message starts naming generated values.
VARIABLE_PART = re.compile(r"[:(\[{\"']")
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Failure classes found and not fixed yet, each with its cause. They are
# printed on every run; remove the entry with the fix. (None today: the last,
# header names gRPC metadata cannot carry, is dropped by Envoy since issue 12.)
BAD_METADATA_KEY = "Server error | 500 | a header name gRPC metadata cannot carry"
TOLERATED: dict[str, str] = {}
GRPC_METADATA_KEY = re.compile(r"[0-9a-z_.-]+")


@dataclass
class Finding:
    operations: set[str] = field(default_factory=set)
    count: int = 0
    example: str = ""


def failure_class(case: Case, failure: Failure, status: int, body: str) -> str:
    """What kind of failure, without the generated values: the check, the
    status and the first words of the server's message or the check's."""
    names = (case.headers or {}).keys()
    if status == 500 and any(not GRPC_METADATA_KEY.fullmatch(n.lower()) for n in names):
        return BAD_METADATA_KEY
    try:
        message = str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError):
        message = body
    if failure.title != "Server error":
        message = failure.message.splitlines()[0] if failure.message else ""
    words = VARIABLE_PART.split(message, maxsplit=1)[0][:80]
    return f"{failure.title} | {status} | {words}"


@dataclass
class Findings:
    cases: int = 0
    failures: dict[str, Finding] = field(default_factory=dict)

    def record(self, case: Case, failure: Failure, status: int, body: str, curl: str) -> None:
        finding = self.failures.setdefault(failure_class(case, failure, status, body), Finding())
        finding.operations.add(case.operation.label)
        finding.count += 1
        if not finding.example:
            finding.example = f"{curl}\n    -> {status} {body[:300]}\n    {failure.message[:600]}"

    def report(self, kinds: set[str]) -> str:
        lines = [f"{len(kinds)} kinds of failure in {self.cases} cases:"]
        for kind, finding in sorted(self.failures.items()):
            if kind not in kinds:
                continue
            lines.append(
                f"- {kind} ({finding.count}x): {', '.join(sorted(finding.operations))}\n"
                f"    {finding.example}"
            )
        return "\n".join(lines)


def _fuzz(case_runner: Callable[[Case], None], strategy: object) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(SEED)
    @given(case=strategy)
    def run(case: Case) -> None:
        case_runner(case)

    run()


def test_no_operation_answers_5xx_or_off_its_schema(stack: Stack, api: httpx.Client) -> None:
    tenant = signup(api)
    schema = schemathesis.openapi.from_url(stack.api_url + DOCUMENT)
    findings = Findings()

    def call_and_check(case: Case) -> None:
        findings.cases += 1
        response = case.call(base_url=stack.api_url, headers=tenant.headers, timeout=30)
        try:
            case.validate_response(response, checks=CHECKS, headers=tenant.headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                curl = case.as_curl_command(headers=tenant.headers, base_url=stack.api_url)
                findings.record(case, failure, response.status_code, response.text, curl)
        except Failure as failure:
            curl = case.as_curl_command(headers=tenant.headers, base_url=stack.api_url)
            findings.record(case, failure, response.status_code, response.text, curl)

    operations = [result.ok() for result in schema.get_all_operations()]
    document = api.get(DOCUMENT).json()
    documented = {
        f"{verb.upper()} {path}" for path, ops in document["paths"].items() for verb in ops
    }
    # schemathesis may leave out the operation that serves the document it loaded.
    assert documented - {"GET " + DOCUMENT} <= {op.label for op in operations} <= documented
    no_negative = []
    for operation in operations:
        _fuzz(call_and_check, operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        try:
            _fuzz(call_and_check, operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        except Unsatisfiable:
            # Only a string path parameter: every value schemathesis makes to
            # break its schema is one a URL path cannot carry, so it filters
            # them all out (seen for GET /api/v1/alert-rules/{rule_id}).
            no_negative.append(operation.label)
    if no_negative:
        print("no schema-breaking input exists for:", ", ".join(no_negative))
    print(f"schemathesis ran {findings.cases} cases over {len(operations)} operations")
    assert findings.cases >= len(operations) * 2
    tolerated = set(findings.failures) & set(TOLERATED)
    if tolerated:
        print("tolerated until fixed:", findings.report(tolerated), sep="\n")
    unexpected = set(findings.failures) - set(TOLERATED)
    assert not unexpected, findings.report(unexpected)
