# dialogue — every target sets up what it needs first (.venv, node_modules), so a fresh clone
# needs only `make run` or `make test`.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
PROTOS := $(wildcard protos/dialogue/v1/*.proto)

.PHONY: setup run test lint gen check-gen fmt clean bench

setup: $(VENV_STAMP) $(NODE_STAMP) debian-packages

# Debian packages the tests use: redis-server (tests start their own on a free loopback port)
# and graphviz (`dialogue graph` draws flows with dot). Installed once, when missing.
.PHONY: debian-packages
debian-packages:
	@command -v redis-server >/dev/null && command -v dot >/dev/null || { \
		echo "installing redis-server and graphviz (Debian packages)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server graphviz >/dev/null; }

$(VENV_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --editable '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	# `npm ci` rejects this lock file (npm omits the other platforms' optional buf binaries from
	# it), so install from the lock without rewriting it.
	npm install --no-audit --no-fund --no-save --loglevel=error
	touch $@

## run: the server (demo flows, embedded SQLite store) and every gateway, in the foreground.
run: $(VENV_STAMP)
	bash scripts/run-all.sh

## test: everything set up, then every test.
test: setup
	$(PY) -m pytest

## bench: performance figures (~5 min), written to docs/benchmarks.md and docs/benchmarks.png.
bench: setup
	$(PY) -m bench --profile

## lint: ruff (lint + format check), mypy strict, buf lint, generated code fresh.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	node_modules/.bin/buf lint

fmt: $(VENV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## gen: regenerate gen/python from protos/ (committed; tests check it is fresh).
gen: $(VENV_STAMP)
	rm -rf gen/python
	mkdir -p gen/python
	$(PY) -m grpc_tools.protoc -I protos \
		--python_out=gen/python --grpc_python_out=gen/python \
		--plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy \
		--plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc \
		--mypy_out=gen/python --mypy_grpc_out=gen/python $(PROTOS)
	touch gen/python/dialogue/__init__.py gen/python/dialogue/v1/__init__.py \
		gen/python/dialogue/py.typed

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache
