# The front door: `make run` starts the platform, `make test` runs the suite.
# Both set up .venv and node_modules first; setup re-runs only when its inputs change.
PY      := .venv/bin/python
SITE     = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
PROTOS  := $(wildcard proto/clarion/v1/*.proto)
GOOGLE_PROTOS := google/rpc/status.proto google/rpc/error_details.proto

.PHONY: run test setup browser generate check-generated lint bench bench-bulk bench-csv

setup: .venv/.installed node_modules/.installed

.venv/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

# The portal's browser tests drive Debian's Chromium (Playwright's own browser
# downloads are not reachable from CI).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }

run: setup
	$(PY) -m runner

test: setup browser check-generated lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Screenshots of every portal page into docs/screenshots/ (the browser tests
# otherwise keep them under pytest's basetemp only).
.PHONY: screenshots
screenshots: setup browser
	CLARION_SCREENSHOTS=1 $(PY) -m pytest -q tests/e2e/test_portal_ui.py

# Stubs for Python and a descriptor set for Envoy's transcoder. google/rpc is
# included so that Envoy can turn error details into JSON.
generate: .venv/.installed
	rm -rf generated && mkdir -p generated
	$(PY) -m grpc_tools.protoc -Iproto -I$(SITE) \
	  --python_out=generated --pyi_out=generated --grpc_python_out=generated \
	  $(PROTOS)
	$(PY) -m grpc_tools.protoc -Iproto -I$(SITE) \
	  --include_imports --include_source_info \
	  --descriptor_set_out=generated/clarion.binpb \
	  $(PROTOS) $(GOOGLE_PROTOS)
	touch generated/clarion/__init__.py generated/clarion/v1/__init__.py
	$(PY) -m gateway.openapi generated/clarion.binpb docs/api.md generated/openapi.json

check-generated: .venv/.installed
	@tmp=$$(mktemp -d) && cp -r generated $$tmp/before && $(MAKE) -s generate && \
	  if diff -r $$tmp/before generated >/dev/null; then rm -rf $$tmp; \
	  else diff -r $$tmp/before generated | head -20; rm -rf $$tmp; \
	    echo "generated/ is stale: run make generate and commit"; exit 1; fi

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	node_modules/.bin/buf lint generated/clarion.binpb --path clarion

# Every performance figure beside its ceiling, measured in the same run on a
# fresh platform: one table, and bench/results.json (docs/performance.md).
bench: setup bench-tools
	$(PY) -m bench.suite $(BENCH_ARGS)

# The same scenarios with smaller sizes, in a few minutes.
.PHONY: bench-quick
bench-quick: setup bench-tools
	$(PY) -m bench.suite --quick $(BENCH_ARGS)

# wrk drives HTTP load in C: a Python client would be the bottleneck here.
.PHONY: bench-tools
bench-tools:
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

# One tenant bursts, another sends OTPs, a third runs a 10,000-row bulk: the
# OTP tenant's latency and the burst's throughput against it alone.
.PHONY: bench-isolation
bench-isolation: setup
	$(PY) -m bench.isolation $(BENCH_ARGS)

# Single-send accept p99 and delivered throughput with 3 webhook endpoints
# registered against none (target: within 10%).
.PHONY: bench-webhooks
bench-webhooks: setup
	$(PY) -m bench.webhooks $(BENCH_ARGS)

# CPU per single SMS by process, and the raw Temporal ceiling (a workflow
# with one local activity and one signal) on the same server.
.PHONY: bench-cpu
bench-cpu: setup
	$(PY) -m bench.cpu_per_send $(BENCH_ARGS)

# CSV parse CPU, 50 MB in 4 KiB against 1 MiB chunks; no platform needed.
bench-csv: setup
	$(PY) -m bench.csv_parse

# Another tenant's send latency, quiet and during 50 signups/s from 50 addresses.
.PHONY: bench-signup
bench-signup: setup
	$(PY) -m bench.signup_flood $(BENCH_ARGS)

# A long schemathesis run (tests/fuzz) against its own platform on free ports.
.PHONY: fuzz
fuzz: setup
	CLARION_FUZZ_EXAMPLES=$${CLARION_FUZZ_EXAMPLES:-300} $(PY) -m pytest -q -s tests/fuzz

# 100,000-row CSV upload and a 10,000-row JSON bulk; takes about a quarter of an hour here.
bench-bulk: setup
	$(PY) -m bench.bulk $(BENCH_ARGS)
