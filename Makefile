# Everything a fresh Debian 12 machine needs is installed by these targets
# themselves: host packages with apt, Python packages in .venv, kernels in
# ~/.cache/v4l2-unplug. Each step is a no-op when already done.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
HOST_PACKAGES := $(shell grep -v '^\#' vm/host-packages.txt)
PYTEST_ARGS ?=

.PHONY: all setup host-packages kernels run test unit bench lint clean

all: run

setup: host-packages $(VENV)/.installed

host-packages:
	@missing=$$(for p in $(HOST_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing host packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

# Fetch or build the kernels the tests boot once, before tests run in
# parallel: 6.1 as Debian ships it and as the debug build, and Debian trixie's
# current kernel (tests/vm/test_current_kernel.py).
kernels: setup
	$(BIN)/v4l2-unplug kernel --kernel debian --kernel debug --kernel debian-trixie

# What the harness is for, on the newest stable kernel it has: the whole vimc
# unplug matrix and a race of at most two minutes on debug-sid (Linux 7.2 with
# KASAN and lockdep; built on first use, about 14 minutes on two cores), then a
# table of what they found, each finding with the command that reproduces it.
# debug-sid, not debian-sid: Debian's 7.2 oopses at boot under TCG about once
# in fifteen boots (an int3 in text being patched); the debug build, without
# jump labels or paravirt, never did in the boots counted in README's Quick start.
# Exits 0 when the harness did its job, whatever it found (`survey --help`).
run: setup
	$(BIN)/v4l2-unplug survey

test: kernels
	$(BIN)/ruff check harness tests
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --durations=15 $(PYTEST_ARGS)

unit: setup
	$(BIN)/pytest -m 'not vm' $(PYTEST_ARGS)

bench: kernels
	$(BIN)/python -m tests.bench

lint: setup
	$(BIN)/ruff check harness tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) reports *.egg-info
