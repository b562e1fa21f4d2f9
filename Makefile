# `make demo` and `make test` are the whole set-up: each creates .venv when it is
# missing and installs the project into it first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench conformance clean launcher

$(PY):
	python3 -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml src/clickos/launch/launcher.c
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(MAKE) launcher
	touch $(STAMP)

# The C launcher replaces pip's Python wrappers for click, click-flatten and
# click-buildtool so they start in milliseconds (see src/clickos/launch/). Without
# a C compiler the Python wrappers stay, and everything still works, more slowly.
launcher: $(PY)
	@if command -v cc >/dev/null 2>&1 && cc -O2 -o $(VENV)/bin/.click-launcher src/clickos/launch/launcher.c; then \
	  for p in click click-flatten click-buildtool; do cp -f $(VENV)/bin/.click-launcher $(VENV)/bin/$$p; done; \
	  rm -f $(VENV)/bin/.click-launcher; \
	else echo "no C compiler: click runs without the fast launcher"; fi

demo: $(STAMP)
	$(VENV)/bin/clickos demo

test: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(PY) -m pytest -p no:cacheprovider; rc=$$?; \
	  $(PY) -m clickos.launch.zygote --stop $(CURDIR)/$(VENV)/run/zygote.sock; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests

bench: $(STAMP)
	$(VENV)/bin/clickos bench run

clean:
	rm -rf $(VENV) build src/*.egg-info
