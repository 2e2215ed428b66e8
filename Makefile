# rnn2c: two commands do all the set-up on a fresh machine.
#   make demo   train a small GRU on a real recorded dataset, export it to C, verify it
#   make test   the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RNN2C  := $(VENV)/bin/rnn2c
DEMO   ?= build/demo
# The extra `bench` (LiteRT and TFLite Micro, for `rnn2c bench`): its pinned wheels are checked
# on x86-64 Linux only; elsewhere the venv goes without it and `rnn2c bench` reports those rows
# as not installed (make EXTRAS=train,dev,boards,bench,onnx,tune to try).
ifeq ($(shell uname -sm),Linux x86_64)
EXTRAS ?= train,dev,boards,bench,onnx,tune
else
EXTRAS ?= train,dev,boards,onnx,tune
endif

.PHONY: demo test lint venv clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(RNN2C) train --dataset uea:BasicMotions --cell gru --units 32 --out $(DEMO)/run --force
	$(RNN2C) export $(DEMO)/run/model.keras --calib $(DEMO)/run/calib.npz --out $(DEMO)/c --name basicmotions --input-quant per-feature
	$(RNN2C) verify $(DEMO)/run/model.keras $(DEMO)/c --data $(DEMO)/run/test.npz --stream 10000 --plot $(DEMO)/verify.png

test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q -n auto --dist loadfile

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf build .pytest_cache
