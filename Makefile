# Two commands set everything up on a fresh machine with Python 3.11 and pip:
#   make demo   -- create .venv, install pinned requirements, run the demo
#   make test   -- same set-up, then the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow lint clean chromium

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

demo: $(STAMP)
	$(BIN)/denoise-jax demo --out demo_out

# The app's browser test drives Debian's chromium (never playwright's download); without
# apt-get, or when the install fails, that one test skips with the reason.
chromium:
	@test -x /usr/bin/chromium || { command -v apt-get >/dev/null && \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
	  echo "note: chromium not installed; tests/test_app_browser.py will be skipped"

test: $(STAMP) chromium
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

test-slow: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check denoise_jax tests experiments

clean:
	rm -rf $(VENV) demo_out .pytest_cache
