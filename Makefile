# The two commands of the README: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EXTRAS ?= test,demo,onnx

.PHONY: demo test venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m mobilenet_v1.demo --out data/digits
	$(PY) -m mobilenet_v1 train --config_path configs/demo.yaml
	$(PY) -m mobilenet_v1 eval --config_path configs/demo.yaml --checkpoint_path runs/demo

test: $(VENV)/.installed
	$(PY) -m pytest tests

clean:
	rm -rf $(VENV) data/digits runs
