# The two set-up commands of the README. Each one builds everything it needs on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.confoundry-installed

.PHONY: demo test lint bench screenshot clean setup

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU build of PyTorch first (see docs/install.md): a bare "torch" would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet "torch==2.13.0" || $(BIN)/python -m pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/confoundry demo pneumonia --out report.html --json report.json

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks case_studies scripts

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

screenshot: $(STAMP)
	$(BIN)/confoundry demo pneumonia --out report.html --json report.json
	$(BIN)/python scripts/screenshot_report.py --from-html report.html --out docs/img/report.png

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
