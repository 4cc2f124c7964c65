# The README's two commands: `make demo` and `make test`. Both work from a fresh clone with nothing
# running: they create the venv, install, fetch the Kafka jars, and start (or reuse) the local stack.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HUB    := $(VENV)/bin/hub
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install demo test test-reliability test-unit lint bench bench-quick bench-tools browser-tools compose-check up down status clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: install
	@$(HUB) dev up
	@$(HUB) topics create
	@$(HUB) demo
	@echo
	@echo "The stack keeps running for you to explore. Put hub on your PATH in this shell:"
	@echo "  export PATH=\"$(CURDIR)/$(VENV)/bin:\$$PATH\""
	@echo "then try:"
	@echo "  hub dev status                      # the servers, their TLS, who connects to what"
	@echo "  hub ledger report --party bank      # the bank's breaches (--format csv for a spreadsheet)"
	@echo "  hub audit replay --as-of 2026-01-31 # the list as it stood then, from the topics alone"
	@echo "  hub agency check -h                 # an interception check; the demo printed subjects to try"
	@echo "  hub dev down                        # stop the stack (data is kept for the next make demo)"

# Starts the stack if it is down and stops it again afterwards; a stack that was up is left up.
test: install lint browser-tools
	@if $(HUB) dev status --quiet 2>/dev/null; then was_up=1; else was_up=0; fi; \
	$(HUB) dev up || exit $$?; \
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$was_up = 0 ]; then $(HUB) dev down; fi; \
	exit $$rc

# Fault injection (SIGKILL of every service, broker and database restarts, bad input): only the tests
# marked `reliability`, which `make test` and plain `pytest` leave out. The stack is handled as by `test`.
test-reliability: install
	@if $(HUB) dev status --quiet 2>/dev/null; then was_up=1; else was_up=0; fi; \
	$(HUB) dev up || exit $$?; \
	$(PY) -m pytest -m reliability tests/reliability $(PYTEST_ARGS); rc=$$?; \
	if [ $$was_up = 0 ]; then $(HUB) dev down; fi; \
	exit $$rc

# Benchmarks (not part of `make test`): one table, and bench/results/latest.json. Like `make test`, they
# start the stack if it is down and stop it afterwards; a stack that was up is left up.
define run_bench
	@if $(HUB) dev status --quiet 2>/dev/null; then was_up=1; else was_up=0; fi; \
	$(HUB) dev up || exit $$?; \
	$(PY) -m bench.run --size $(1); rc=$$?; \
	if [ $$was_up = 0 ]; then $(HUB) dev down; fi; \
	exit $$rc
endef

bench: install bench-tools
	$(call run_bench,full)

bench-quick: install bench-tools
	$(call run_bench,quick)

# Debian's wrk, P3's HTTP load generator, installed when missing (as root, or through sudo). A failed install
# does not stop the benchmarks: P3 then reports its wrk rows as failed, with the reason.
bench-tools:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	  echo "installing wrk (apt-get)"; \
	  { $$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y wrk; } \
	    || echo "warning: could not install wrk; P3's wrk rows will be reported as failed" >&2; }

# Debian's headless Chromium, its chromedriver and a CJK font (the pages are Chinese), for the browser tests
# (tests/browser.py), installed when missing (as root, or through sudo). Unlike bench-tools, a failed install
# fails the target: the tests cannot run without them.
browser-tools:
	@{ command -v chromium && command -v chromedriver && fc-list 2>/dev/null | grep -qi zenhei; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	  echo "installing chromium, chromium-driver, fonts-wqy-zenhei (apt-get)"; \
	  { $$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y \
	      chromium chromium-driver fonts-wqy-zenhei; } \
	    || { echo "error: could not install chromium, chromium-driver, fonts-wqy-zenhei" >&2; exit 1; }; }

test-unit: install
	@$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: install
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

# `docker compose config -q`, building the compose plugin from the Go module proxy if the client lacks it.
compose-check:
	@infra/docker/compose-check.sh

up: install
	@$(HUB) dev up

down: install
	@$(HUB) dev down

status: install
	@$(HUB) dev status

clean: down
	rm -rf .hub $(VENV)
