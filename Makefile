# PSL Studio — the two commands a newcomer needs: `make run` and `make test`.
# Each does its own set-up on a fresh machine: a .venv, the CPU build of torch FIRST (a bare
# `pip install -e .` in an empty venv would pull a CUDA torch of several GB), the package with its
# dev and ray extras (the Ray backend's tests start a real 2-CPU Ray instance), and, when running as
# root, the Debian packages the tests need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Override on machines with another torch build, e.g. `make TORCH_SPEC="torch>=2.3" test`.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
APT_PACKAGES := chromium chromium-driver postgresql dataset-fashion-mnist
PORT ?= 8501

.PHONY: run test lint bench system-deps clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(PIP) install -q --disable-pip-version-check -e '.[dev,ray]'
	touch $(STAMP)

# Installs what the tests need (browser, PostgreSQL, Fashion-MNIST) when root and missing.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: missing Debian packages ($$missing); the tests that need them will be skipped"; fi; \
	fi

run: $(STAMP)
	$(VENV)/bin/psl ui --port $(PORT)

test: $(STAMP) system-deps
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) bench/bench_sampling.py

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
