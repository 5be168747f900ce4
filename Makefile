# The two commands of the README: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# tensorboard: event files in each run folder; plot: matplotlib for `mobilenet-v1 plot` (make demo draws its curves);
# onnx: export, quantize and ONNX evaluation; executorch: .pte files for phones (export --file_format PTE);
# tflite: .tflite files (export --file_format TFLITE) and LiteRT, which runs them.
EXTRAS ?= test,demo,tensorboard,plot,onnx,executorch,tflite

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
	$(PY) -m mobilenet_v1 plot runs/demo --out runs/demo/curves.png

# Two processes (the CI machine's two cores), a test file each at a time: a file's module fixtures are built
# once and its multi-process tests keep their order (pytest-xdist), the longest files first (tests/conftest.py).
# One torch thread each (tests/conftest.py); the 12 slowest items listed at the end, to see what the suite's time
# goes to in a CI log. 2-core development CPU, clean clone, alone: 1206 tests in 8:56 (2026-12-07, 05:40 UTC, an
# Intel Xeon); 1322 in 7:19 (2026-12-07, 11:23 UTC, an AMD EPYC); the history in benchmarks/RESULTS.md.
test: $(VENV)/.installed
	$(PY) -m pytest -n 2 --dist loadfile --durations=12 tests

clean:
	rm -rf $(VENV) data/digits runs
