# autolog: `make demo` runs the pipeline on sample clips; `make test` runs lint, types and tests.
# Both install what they need first (system tools, the venv, the package), idempotently.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.autolog-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint types pytest system-deps install clean

demo: install
	$(BIN)/autolog demo

test: install lint types pytest

lint: install
	$(BIN)/ruff check .

types: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -q

install: system-deps $(STAMP)

# ffmpeg/ffprobe do the media work; espeak-ng speaks the sample clips' dialogue; prometheus
# and promtool check the scrape config, the alert rules and a real scrape in the tests; chromium
# loads the dashboard as a browser does.
system-deps:
	@missing=""; \
	for tool in ffmpeg:ffmpeg ffprobe:ffmpeg espeak-ng:espeak-ng prometheus:prometheus promtool:prometheus chromium:chromium; do \
	  command -v $${tool%%:*} >/dev/null || missing="$$missing $${tool##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

$(STAMP): setup.cfg pyproject.toml
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	# dramatiq-dashboard 0.4.0 pins dramatiq<2 and redis<5 but runs on dramatiq 2.2.
	$(BIN)/pip install -q --no-deps 'dramatiq-dashboard==0.4.0'
	touch $(STAMP)

clean:
	rm -rf $(VENV) var build *.egg-info
