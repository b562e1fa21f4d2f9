# `make demo` and `make test` are the whole set-up: each creates .venv when it is
# missing and installs the project into it first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench conformance clean

$(PY):
	python3 -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/clickos demo

test: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(PY) -m pytest -x -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests

bench: $(STAMP)
	$(VENV)/bin/clickos bench run

clean:
	rm -rf $(VENV) build src/*.egg-info
