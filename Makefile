# Life Palette. `make demo` and `make test` set everything up themselves on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= /dev/ttyUSB0

.PHONY: setup system-deps data test lint compile bench demo flash clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,lsl]'
	touch $(STAMP)

# Debian packages that tests need (services are started by the tests themselves, on 127.0.0.1).
system-deps:
	LP_DEBIAN_PACKAGES="mosquitto chromium" bash scripts/system-deps.sh

# Real recordings shipped inside PyPI packages, installed data-only into an ignored folder (never committed).
data: setup
	bash scripts/fetch-data.sh

compile: setup
	$(PY) scripts/compile_badge.py

test: setup system-deps data compile lint
	$(PY) -m pytest -q -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check host tests bench scripts protocol firmware

bench: setup data
	$(PY) -m bench

demo: setup
	$(PY) -m lifepalette demo

flash: setup
	$(PY) -m lifepalette flash --port $(PORT) $(if $(CONFIG),--config $(CONFIG))

clean:
	rm -rf $(VENV) .data artifacts build *.egg-info
