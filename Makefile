# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEMO_DIR ?= data/demo
DEMO_EXAMS ?= 60
PYTEST_ARGS ?=

.PHONY: install demo test lint cluster-test bench clean

install: $(STAMP)

# torch first, pinned: this machine has the 2.13.0 CPU build on disk; an unpinned torch pulls CUDA.
$(STAMP): setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[spark,s3,mlflow,sentence-transformers,dev]'
	touch $(STAMP)

# Train on one generated dump, then label a second, "new" dump with the saved pipeline.
demo: install
	$(PY) -m radnet_spark synth --out $(DEMO_DIR)/pacs --exams $(DEMO_EXAMS) --seed 7
	$(PY) -m radnet_spark run --dicom $(DEMO_DIR)/pacs/dicom --diagnoses $(DEMO_DIR)/pacs/diagnoses.csv \
		--out $(DEMO_DIR)/warehouse --models $(DEMO_DIR)/models --name demo --config configs/demo.yaml
	$(PY) -m radnet_spark synth --out $(DEMO_DIR)/new-pacs --exams 10 --seed 8
	$(PY) -m radnet_spark label --pipeline "$$(ls -d $(DEMO_DIR)/models/demo/v* | tail -n 1)" \
		--dicom $(DEMO_DIR)/new-pacs/dicom --diagnoses $(DEMO_DIR)/new-pacs/diagnoses.csv \
		--out $(DEMO_DIR)/warehouse
	@echo "report: $(DEMO_DIR)/warehouse/report/index.html"

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Starts a real standalone Spark cluster (1 master, 2 one-core workers on loopback), submits the
# pipeline with spark-submit and compares its labels with local mode; stops the cluster after.
cluster-test: install
	$(PY) -m pytest -q -m cluster tests/cluster

lint: install
	$(VENV)/bin/ruff check radnet_spark jobs tests bench notebooks

clean:
	rm -rf data/demo spark-warehouse .pytest_cache
