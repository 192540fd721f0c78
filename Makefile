# dialogue — every target sets up what it needs first (.venv, node_modules), so a fresh clone
# needs only `make run` or `make test`. Each set-up step announces itself with a `==>` line.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
PROTOS := $(wildcard protos/dialogue/v1/*.proto)
BUF := node_modules/.bin/buf

.PHONY: setup run demo test lint gen check-gen breaking fmt clean bench

setup: $(VENV_STAMP) $(NODE_STAMP) debian-packages

# Debian packages the tests use: redis-server (tests start their own on a free loopback port),
# graphviz (`dialogue graph` draws flows with dot) and a CJK font (so PNGs of the Chinese flows
# show text, not boxes). Installed once, when missing: with sudo unless we are root; without
# either, it names the packages to install and stops.
DEBIAN_PACKAGES := redis-server graphviz fonts-wqy-zenhei
.PHONY: debian-packages
debian-packages:
	@command -v redis-server >/dev/null && command -v dot >/dev/null \
		&& fc-list :lang=zh family 2>/dev/null | grep -q . || { \
		if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; \
		else echo "make needs these Debian packages: $(DEBIAN_PACKAGES);" \
			"install them as root (apt-get install $(DEBIAN_PACKAGES)) and run make again" >&2; \
			exit 1; fi; \
		echo "==> installing Debian packages: $(DEBIAN_PACKAGES) ($${sudo:+with sudo, }apt-get)"; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			$$sudo apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; }

# pip is not --quiet: it prints a line per package, so a cold install (minutes) shows progress.
$(VENV_STAMP): pyproject.toml
	@echo "==> creating $(VENV) (Python packages: pip prints each one)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install --editable '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	@echo "==> installing node packages (buf, the Node.js gRPC client test)"
	# `npm ci` rejects this lock file (npm omits the other platforms' optional buf binaries from
	# it), so install from the lock without rewriting it.
	npm install --no-audit --no-fund --no-save --loglevel=error
	touch $@

## demo: one scripted call played through the server and the Aliyun IVR gateway, turn by turn.
demo: $(VENV_STAMP)
	$(PY) -m scripts.demo

## run: the server (demo flows, embedded SQLite store) and every gateway, in the foreground.
run: $(VENV_STAMP) debian-packages
	bash scripts/run-all.sh

## test: everything set up, then every test.
test: setup
	@echo "==> running the tests"
	$(PY) -m pytest

## bench: performance figures (~5 min), written to docs/benchmarks.md and docs/benchmarks.png.
bench: setup
	$(PY) -m bench --profile

## lint: ruff (lint + format check), mypy strict, buf lint and breaking, generated code fresh.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(BUF) lint
	$(MAKE) --no-print-directory breaking check-gen

## breaking: buf breaking against the previous commit (the contract grows only additively).
# buf reads the previous commit from the repository's git directory (the common one, so this
# works in a worktree too); without a previous commit (a shallow clone, no git) it says so.
breaking: $(NODE_STAMP)
	@if previous=$$(git rev-parse --verify -q HEAD~1 2>/dev/null); then \
		echo "buf breaking against $$previous (HEAD~1)"; \
		$(BUF) breaking --against "$$(git rev-parse --git-common-dir)#ref=$$previous"; \
	else echo "buf breaking skipped: no previous commit here (a shallow clone?)"; fi

fmt: $(VENV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# protoc into the directory $(1): Python messages, gRPC stubs and their mypy stubs.
protoc = $(PY) -m grpc_tools.protoc -I protos \
	--python_out=$(1) --grpc_python_out=$(1) \
	--plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy \
	--plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc \
	--mypy_out=$(1) --mypy_grpc_out=$(1) $(PROTOS) \
	&& touch $(1)/dialogue/__init__.py $(1)/dialogue/v1/__init__.py $(1)/dialogue/py.typed

## gen: regenerate gen/python from protos/ (committed; `make check-gen` and a test check it).
gen: $(VENV_STAMP)
	rm -rf gen/python
	mkdir -p gen/python
	$(call protoc,gen/python)

## check-gen: regenerate into a temporary directory and compare with the committed gen/python.
check-gen: $(VENV_STAMP)
	@fresh=$$(mktemp -d) && trap 'rm -rf "$$fresh"' EXIT && \
		$(call protoc,$$fresh) && \
		if diff -r --exclude=__pycache__ "$$fresh" gen/python; then echo "gen/python is fresh"; \
		else echo "gen/python is stale: run make gen and commit it" >&2; exit 1; fi

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache
