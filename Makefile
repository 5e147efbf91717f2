# Two commands on a fresh machine (Python 3.10+, Java 17): `make run` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
JARS    := .ivy2/.warm
ARGS    ?=
MLFLOW_DB   ?= $(CURDIR)/mlflow.db
MLFLOW_PORT ?= 5000

.PHONY: setup run test test-fast lint docs generate bench mlflow-ui clean clean-data

setup: $(STAMP) $(JARS)  ## venv, editable install, JAR warm-up (idempotent)

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "error: Python 3.10+ is required (found " + sys.version.split()[0] + "); install it or run make PY=python3.11")'
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@# PYTHONWARNINGS: setuptools' editable-install banner is advice for package authors, not news for a user
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install -q --upgrade pip
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

$(JARS): $(STAMP)
	$(BIN)/cdp setup
	@touch $@

run: setup  ## generate demo data if absent, then run every pipeline step
	$(BIN)/cdp run $(ARGS)

test: setup  ## the whole suite (real Spark, Delta, MLflow, GX)
	$(BIN)/python -m pytest $(ARGS)

test-fast: setup  ## everything but the slow end-to-end tests
	$(BIN)/python -m pytest -m 'not slow' $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check cdp jobs tests

docs: $(STAMP)  ## regenerate docs/data-dictionary.md from the contracts and source definitions
	$(BIN)/cdp docs --out docs/data-dictionary.md

generate: $(STAMP)  ## e.g. make generate ARGS="--customers 100000 --seed 7 --out /tmp/big"
	$(BIN)/cdp generate $(ARGS)

bench: setup  ## the whole pipeline at 10k/100k/300k customers against Spark's write-once floor, journeys/profiles and churn/value 10k -> 100k, identity 100k -> 1M records and a 1% batch, FEBRL, CDNOW -> docs/benchmarks.md
	$(BIN)/python jobs/bench_pipeline.py --customers 10000,100000
	$(BIN)/python jobs/bench_pipeline.py --customers 300000 --reuse 10000,100000 --day-two 0 --set spark.conf.spark.driver.memory=12g
	$(BIN)/python jobs/bench_journeys.py
	$(BIN)/python jobs/bench_churn.py
	$(BIN)/python jobs/bench_identity.py $(ARGS)
	$(BIN)/python jobs/bench_incremental.py
	$(BIN)/python jobs/bench_febrl.py
	$(BIN)/python jobs/bench_cdnow.py
	$(BIN)/python jobs/bench_graph.py

mlflow-ui: $(STAMP)  ## the MLflow UI over the local tracking store (churn runs and plots, registered models, identity)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(MLFLOW_DB) --host 127.0.0.1 --port $(MLFLOW_PORT)

clean-data:  ## remove generated landing data and the local lakehouse
	rm -rf data lakehouse

clean: clean-data
	rm -rf $(VENV) .ivy2 .pytest_cache .ruff_cache mlflow.db mlruns
