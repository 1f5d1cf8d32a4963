# Two commands for a fresh machine: `make demo` and `make test`. Both create or
# update the virtual environment in .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The local CPU build of torch lives here on the project's machines.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)

.PHONY: demo test lint typecheck env docs pandas-plugin

$(STAMP): pyproject.toml constraints.txt requirements-dev.txt
	@echo "Setting up $(VENV): installing symgraph with its torch, numpy, dask and drawing extras and the"
	@echo "development tools (pip install -e '.[all]' -r requirements-dev.txt); this takes a few minutes the first time."
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(FIND_LINKS) -c constraints.txt -e '.[all]' -r requirements-dev.txt
	touch $(STAMP)
	@echo "$(VENV) is ready."

env: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The documentation site; --strict turns every warning (a broken link, a docstring
# mkdocstrings cannot read) into a failure. Not --quiet: it silences the warnings,
# and then --strict has none to count. The site goes to a temporary folder.
docs: $(STAMP)
	site=$$(mktemp -d) && NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir "$$site"; \
		status=$$?; rm -rf "$$site"; exit $$status

# The third-party plugin in examples/ is tested as its users get it: installed from
# its own folder as a regular (not editable) package, registered by its entry point.
pandas-plugin: $(STAMP)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --force-reinstall ./examples/symgraph_pandas

test: lint typecheck docs pandas-plugin
	# Tier 1: the core with every backend library made unimportable.
	SYMGRAPH_NO_BACKENDS=1 $(PY) -m pytest -q -p no:cacheprovider tests/core
	# Everything: core again, the conformance suite per backend, backend tests, docs.
	$(PY) -m pytest -q -p no:cacheprovider
