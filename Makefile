# Two commands for a fresh machine with python3, pip and make: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch 2.13 CPU: from local disk on these machines; keeps a fresh install from pulling CUDA.
TORCH := torch==2.13.*

.PHONY: demo test install install-test bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/spotfit train --config configs/medical.yaml --set num_workers=2

test: install
	$(BIN)/python -m pytest -q -ra

bench: install
	$(BIN)/python bench/ray_vs_ddp.py

clean:
	rm -rf $(VENV) runs
