# The two set-up commands of the README. Each one builds everything it needs on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.confoundry-installed
DOCS_STAMP := $(VENV)/.confoundry-docs-installed
RELEASE_STAMP := $(VENV)/.confoundry-release-installed

.PHONY: demo test lint bench screenshot clean setup docs wheel-check

$(STAMP): pyproject.toml src/confoundry/_version.py
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

# The documentation site (docs/design.md, last section): installs the docs extra, builds site/
# strictly (a warning, a broken link or anchor, a notebook cell that fails: the build fails),
# executing the notebooks of docs/examples, then checks the built site.
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	$(BIN)/python scripts/check_docs_site.py site

# sdist + wheel, twine check, and the wheel installed into a fresh venv outside the source tree
# with its declared dependencies only, running `import confoundry` and the pneumonia demo.
$(RELEASE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,release]"
	touch $(RELEASE_STAMP)

wheel-check: $(RELEASE_STAMP)
	WHEEL_CHECK_BASE_PYTHON=$(PY) bash scripts/wheel_check.sh $(BIN)/python

clean:
	rm -rf $(VENV) build dist site src/*.egg-info .pytest_cache
