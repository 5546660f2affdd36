# One task runner for people and CI. Every target sets up what it needs from scratch.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-install
export HF_HUB_OFFLINE ?= 1
export VLLM_CPU_KVCACHE_SPACE ?= 1

.PHONY: install demo check test lint unit bench clean vscode vscode-unit vscode-e2e-apt vscode-e2e-deps vscode-e2e emacs-e2e-apt

install: $(STAMP)

# vLLM's CPU build pins a CPU torch; PyPI's torchvision/torchaudio/torchcodec that it pulls
# in are built for another torch and break imports, so they are removed again.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[cpu,test,bench]'
	$(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/coder-lsp demo

lint: $(STAMP)
	$(VENV)/bin/ruff check lsp_server engine tests bench editors
	$(VENV)/bin/ruff format --check lsp_server engine tests bench editors
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

# The fast tier (about two minutes): lint, unit tests, and the real server over stdio on the
# scripted backend (the recording stub), every LSP feature, no vLLM to load.
check: lint unit
	$(PY) -m pytest -q -m scripted tests/lsp

test: lint vscode-unit vscode vscode-e2e-deps emacs-e2e-apt
	$(PY) -m pytest -q -ra
	tests/install/check_wheel.sh

# tests/editors/test_emacs.py runs editors/README.md's Emacs snippet in Debian's Emacs 28 with
# its eglot package (Emacs 29+ bundles eglot; 28 is the oldest the README covers).
EMACS_APT := emacs-nox elpa-eglot

emacs-e2e-apt:
	@missing=$$(for p in $(EMACS_APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing $$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

# Rewrites the figures and plots in bench/README.md.
bench: $(STAMP)
	$(PY) bench/index.py
	$(PY) bench/retrieval.py --write-readme
	$(PY) bench/quality.py
	$(PY) bench/typing_replay.py
	$(PY) bench/fixes.py
	$(PY) bench/cpu_dtype.py --write-readme
	$(PY) bench/redaction.py --write-readme

# --- VS Code extension (editors/vscode) -------------------------------------------------------
# Built with the machine's Node (20 or newer) and npm. The end to end test runs it in
# code-server, which needs Node 24: that comes from the npm package `node`, pinned in
# tests/editors/vscode/node24. Chromium, and the compiler and Kerberos headers that
# code-server's native modules build with, come from Debian's packages.
VSCODE := editors/vscode
VSIX := $(VSCODE)/coder-lsp.vsix
VSCODE_E2E := tests/editors/vscode
NODE24 := $(VSCODE_E2E)/node24/node_modules/.bin/node
E2E_APT := chromium libkrb5-dev g++ make python3 pkg-config
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(VSCODE)/node_modules/.stamp: $(VSCODE)/package.json $(VSCODE)/package-lock.json
	cd $(VSCODE) && npm ci --no-audit --no-fund
	touch $@

# The settings in package.json are generated from the server's schema by
# `$(PY) $(VSCODE)/scripts/generate_settings.py`; tests/editors/test_vscode.py fails when
# they differ.
$(VSIX): $(VSCODE)/node_modules/.stamp $(VSCODE)/package.json $(wildcard $(VSCODE)/src/*.ts) $(VSCODE)/tsconfig.json $(VSCODE)/README.md
	cd $(VSCODE) && npm run package

vscode: $(VSIX)

vscode-unit: $(VSCODE)/node_modules/.stamp
	cd $(VSCODE) && npm test

# Debian packages only when missing (apt-get needs root: sudo when not).
vscode-e2e-apt:
	@missing=$$(for p in $(E2E_APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing $$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

$(NODE24): $(VSCODE_E2E)/node24/package.json $(VSCODE_E2E)/node24/package-lock.json
	cd $(VSCODE_E2E)/node24 && npm ci --no-audit --no-fund
	test -x $@ && touch $@

# code-server builds its native modules for Node 24 at install time (a few minutes on 2 cores,
# once): npm runs under Node 24, and node-gyp takes that Node's headers from the same package.
$(VSCODE_E2E)/node_modules/.stamp: $(VSCODE_E2E)/package.json $(VSCODE_E2E)/package-lock.json $(NODE24)
	$(MAKE) vscode-e2e-apt
	node24=$$(readlink -f $(NODE24)); \
	headers=$$(ls -d $(CURDIR)/$(VSCODE_E2E)/node24/node_modules/node/node_modules/node-*/include/node | head -n 1); \
	cd $(VSCODE_E2E) && PATH="$$(dirname $$node24):$$PATH" npm_config_nodedir="$$(dirname $$(dirname $$headers))" \
	  "$$node24" "$$(command -v npm)" ci --no-audit --no-fund
	touch $@

vscode-e2e-deps: $(VSCODE_E2E)/node_modules/.stamp
	@$(MAKE) --no-print-directory vscode-e2e-apt

# Only the VS Code tests; the engine lock keeps one engine at a time on the machine.
vscode-e2e: $(STAMP) vscode vscode-e2e-deps
	flock /tmp/coder-lsp-engine.lock $(PY) -m pytest -q -ra tests/editors/test_vscode.py

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
	rm -rf $(VSCODE)/node_modules $(VSCODE)/out $(VSIX) $(VSCODE_E2E)/node_modules $(VSCODE_E2E)/node24/node_modules
