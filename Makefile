# autolog: `make demo` runs the pipeline on sample clips; `make test` runs lint, types and tests.
# Both install what they need first (system tools, the venv, the package), idempotently.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.autolog-installed
TEST_STAMP := $(VENV)/.autolog-test-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint types pytest system-deps test-system-deps install test-install clean

demo: install
	$(BIN)/autolog demo

test: test-install lint types pytest

lint: test-install
	$(BIN)/ruff check .

# mypy's cache outside the clone, as pip's is: a fresh clone on this machine checks in seconds, not the
# three minutes a cold run takes on a slow 2-core machine (mypy re-checks any module whose content changed).
MYPY_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/autolog/mypy

types: test-install
	$(BIN)/mypy --cache-dir "$(MYPY_CACHE)"

# Two processes (pytest-xdist): the suite waits on services and subprocesses more than it computes.
pytest: test-install
	$(BIN)/pytest -q -n 2

# What the demo and a production host need: the package and its runtime dependencies.
install: system-deps $(STAMP)

# What the tests need on top: the test tools, and the programs the tests drive.
test-install: install test-system-deps $(TEST_STAMP)

# apt packages, given as command:package pairs, installed only when a command is missing.
define apt_missing
	@missing=""; \
	for tool in $(1); do \
	  command -v $${tool%%:*} >/dev/null || missing="$$missing $${tool##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
endef

# ffmpeg/ffprobe do the media work; espeak-ng speaks the sample clips' dialogue.
system-deps:
	$(call apt_missing,ffmpeg:ffmpeg ffprobe:ffmpeg espeak-ng:espeak-ng)

# prometheus and promtool check the scrape config, the alert rules and a real scrape; chromium
# loads the dashboard and the review pages as a browser does.
test-system-deps:
	$(call apt_missing,prometheus:prometheus promtool:prometheus chromium:chromium)

# --no-compile: Python compiles each module as it is first imported, not the ~10,000 of the venv up front
# (about 50 s of CPU on a slow 2-core machine; a run imports a fraction of them).
$(STAMP): setup.cfg pyproject.toml
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --no-compile -e .
	# dramatiq-dashboard 0.4.0 pins dramatiq<2 and redis<5 but runs on dramatiq 2.2.
	$(BIN)/pip install -q --no-compile --no-deps 'dramatiq-dashboard==0.4.0'
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -q --no-compile -e '.[test]'
	touch $(TEST_STAMP)

clean:
	rm -rf $(VENV) var build *.egg-info
