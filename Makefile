# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/data/dagster_home
export BENCH_DATA_DIR := $(CURDIR)/data

.PHONY: install demo test dev bench bench-scale bench-ui bench-gpu status leaderboard clean-demo arena

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	# Bytecode compiled once here: with PYTHONDONTWRITEBYTECODE set (as on our CI and dev boxes) every
	# interpreter (test workers, `bench run`, the webserver) would otherwise recompile ~3,300 modules on import.
	$(BIN)/uv pip install --compile-bytecode --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

# The instance config is rendered every time: the gpu pool is sized to the GPUs present now.
install: $(STAMP)
	@$(BIN)/bench instance-config --template dagster.yaml

# With BENCH_COMPUTE=modal, a missing Modal token stops here, before installing or writing anything.
demo:
	@$(PYTHON) -m bench_assets.compute.modal_auth
	@$(MAKE) --no-print-directory install
	$(BIN)/bench demo

test: install
	@$(BIN)/python -m compileall -q bench_assets bench_assets_tests >/dev/null
	$(BIN)/lint-imports --no-cache  # the layer contract in pyproject.toml (docs/architecture.md)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup bench_assets_tests

dev: install
	$(BIN)/dagster dev -w workspace.yaml

# Scoring throughput per metric, batched vs one at a time (tiny scorers, this machine);
# then the report: build time, thumbnail cost, size, time to interactive (10 models × 1,000 prompts × 4 images).
bench: install
	$(BIN)/python -m bench_assets.benchmarks.scoring
	$(BIN)/python -m bench_assets.benchmarks.stats
	$(BIN)/python -m bench_assets.benchmarks.distribution  # FID/KID/CMMD/prdc at 10k × 10k, 2048-d (issue 22)
	$(BIN)/python -m bench_assets.benchmarks.report
	$(BIN)/python -m bench_assets.benchmarks.arena

# Every step's cost at a team's size (issue 21): a synthetic data directory per size, each step timed in its
# own process with its peak memory. SCALE_ARGS="--sizes 10x1000,30x1000 --step-timeout 600" (docs/performance.md).
bench-scale: install
	$(BIN)/python -m bench_assets.benchmarks.scale --out bench_scale.json $(SCALE_ARGS)

# One new demo model through `dagster dev` (sensor, daemon, automation) vs in-process `bench run`.
bench-ui: install
	$(BIN)/python -m bench_assets.benchmarks.ui --out bench_ui.json

# Real-size speed on a GPU: SDXL (random weights from its published configs) at 1024², 28 steps,
# fp16, batch 1-8, and CLIP ViT-L/14 scoring. See docs/performance.md.
bench-gpu: install
	$(BIN)/python -m bench_assets.benchmarks.gpu --out bench_gpu.json

status: install
	$(BIN)/bench status

leaderboard: install
	$(BIN)/bench leaderboard

# Blind pairwise votes on the generated images: http://127.0.0.1:8765 (ARENA_ARGS="--host 0.0.0.0" to share;
# set BENCH_ARENA_TOKEN first).
arena: install
	$(BIN)/bench arena $(ARENA_ARGS)

# Remove everything `make demo` generated (models, images, warehouse, instance).
clean-demo:
	rm -rf data/images data/warehouse data/metric_models data/.cache data/dagster_home data/bench.duckdb* data/config.yaml
	find data/models -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
