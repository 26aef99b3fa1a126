# Two commands set everything up on a fresh machine with Python 3.11 and pip:
#   make demo   -- create .venv, install pinned requirements, run the demo
#   make test   -- same set-up, then the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test test-slow lint clean chromium bench bench-quick

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m denoise_jax.ops.build
	@touch $@

# torch (CPU build) for the PyTorch twins: benchmarks, and the test that checks the twins'
# parameter counts. Never part of requirements.txt.
$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-bench.txt
	@touch $@

demo: $(STAMP)
	$(BIN)/denoise-jax demo --out demo_out

# The app's browser test drives Debian's chromium (never playwright's download); without
# apt-get, or when the install fails, that one test skips with the reason.
chromium:
	@test -x /usr/bin/chromium || { command -v apt-get >/dev/null && \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
	  echo "note: chromium not installed; tests/test_app_browser.py will be skipped"

# The import-layer contract ([tool.importlinter] in pyproject.toml) and ruff run first.
# Two pytest-xdist workers, one test file each at a time (module fixtures are built once);
# TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: $(STAMP) $(BENCH_STAMP) chromium lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-slow: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -m slow

# Speed benchmarks against PyTorch twins (torch from requirements-bench.txt, never from
# requirements.txt); results in benchmarks/results/, table in README's Performance section.
bench: $(BENCH_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.report --readme README.md

bench-quick: $(BENCH_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m benchmarks.run --quick
	$(BIN)/python -m benchmarks.report --readme README.md

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check denoise_jax tests experiments benchmarks

clean:
	rm -rf $(VENV) demo_out .pytest_cache
