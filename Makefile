# Life Palette. `make demo` and `make test` set everything up themselves on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= /dev/ttyUSB0

.PHONY: setup system-deps data test lint compile bench demo flash badge-image check-aarch64 clean

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

# The badge's firmware image: MicroPython's esp32 port with firmware/manifest.py frozen into flash, built with
# ESP-IDF in docker from a MicroPython checkout (MICROPYTHON=path; the esp32 port's README names the IDF versions
# it supports). BADGE_BOARD: ESP32_GENERIC, ESP32_GENERIC_S3 or ESP32_GENERIC_C3. Needs docker and the network;
# not part of `make test` (hardware/bring-up.md: flashing it).
MICROPYTHON ?= ../micropython
BADGE_BOARD ?= ESP32_GENERIC
IDF_IMAGE ?= espressif/idf:v5.2.2
badge-image: setup
	@test -d $(MICROPYTHON)/ports/esp32 || { echo "badge-image: $(MICROPYTHON) is not a MicroPython checkout (set MICROPYTHON=...)"; exit 2; }
	$(PY) -m lifepalette.tools.image stamp
	docker run --rm -v $(abspath $(MICROPYTHON)):/mp -v $(CURDIR):/lp -w /mp/ports/esp32 $(IDF_IMAGE) bash -c \
		"make -C /mp/mpy-cross && make BOARD=$(BADGE_BOARD) submodules && make BOARD=$(BADGE_BOARD) FROZEN_MANIFEST=/lp/firmware/manifest.py"
	@echo "badge image: $(MICROPYTHON)/ports/esp32/build-$(BADGE_BOARD)/firmware.bin"

# The hub's compiled scorer on a Raspberry Pi's architecture (aarch64) under qemu-user, bit for bit against this
# machine. Needs root or sudo and the network; minutes (the kernels compile under emulation); not part of `make test`.
check-aarch64: setup
	bash scripts/check-aarch64.sh

clean:
	rm -rf $(VENV) .data artifacts build *.egg-info
