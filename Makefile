# PatchDriveNet developer entry points.
#
#   make setup   system tools (only if missing), .venv with every pinned Python dependency,
#                colcon build of pdn_msgs and pdn_ros; a second run does nothing
#   make test    colcon test (pytest) in a loopback-only network namespace, test results, ruff
#   make demo    synthetic 4K camera -> pdn_node (demo model) -> live status; out/demo/ (30 s)
#   make lint    ruff
#   make clean   remove build outputs (keeps .venv; `make distclean` removes it too)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
COLCON := $(VENV)/bin/colcon
RUFF := $(VENV)/bin/ruff

# The venv is installed once per content of requirements.txt and requirements-nodeps.txt.
REQ_SHA := $(shell cat requirements.txt requirements-nodeps.txt | sha256sum | cut -c1-16)
VENV_STAMP := $(VENV)/.installed-$(REQ_SHA)
BUILD_STAMP := install/.pdn-build-stamp
BUILD_INPUTS := package.xml setup.py setup.cfg resource/pdn_ros \
	msg/package.xml msg/CMakeLists.txt $(wildcard msg/msg/*.msg) \
	$(wildcard config/*) $(wildcard launch/*.py) \
	$(wildcard $(addsuffix /__init__.py,pdn_ros pdn_model pdn_runtime training pdn_bench))

# Nothing may leave this host: every ROS node started from here uses the shared-memory-only
# Fast DDS profile, so it opens no UDP or TCP socket and only finds peers on this machine.
# The discovery range is SYSTEM_DEFAULT on purpose: LOCALHOST makes rmw_fastrtps add a UDPv4
# initial peer and unicast locator, and Fast DDS then opens UDP sockets on 0.0.0.0 after all.
export FASTDDS_DEFAULT_PROFILES_FILE := $(CURDIR)/config/fastdds_shm.xml
export ROS_AUTOMATIC_DISCOVERY_RANGE := SYSTEM_DEFAULT
export RMW_IMPLEMENTATION := rmw_fastrtps_cpp

# The ROS 2 wheels form a ROS prefix inside the venv; colcon and CMake find it through these.
ROS_ENV := VIRTUAL_ENV=$(VENV) PATH="$(VENV)/bin:$$PATH" \
	AMENT_PREFIX_PATH=$(VENV) CMAKE_PREFIX_PATH=$(VENV)
COLCON_PATHS := --base-paths . msg
COLCON_TEST := $(COLCON) test $(COLCON_PATHS) --return-code-on-test-failure \
	--event-handlers console_direct+

.PHONY: help setup system-deps build test lint demo clean distclean

help:
	@sed -n '3,8p' $(firstword $(MAKEFILE_LIST)) | sed 's/^# \{0,1\}//'

setup: $(BUILD_STAMP)

# Install a Debian package only when the command it provides is missing.
system-deps:
	@missing=""; \
	for pair in cmake:cmake g++:g++ ip:iproute2; do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; \
	done; \
	python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	python3 -c 'import os, sysconfig; \
	  assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' \
	  >/dev/null 2>&1 || missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing system packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -q; \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$missing; \
	fi

# Drop pip's warnings about configured local index folders that do not exist on this machine.
PIP_QUIET := 2>&1 | { grep -v "^WARNING: Location 'file://" || true; }

# pip and torch first, from their pins (torch must never be resolved by another package: an
# unpinned torch pulls a CUDA build), then the whole pinned set, then the packages that must
# be installed without their declared dependencies (requirements-nodeps.txt).
$(VENV_STAMP): requirements.txt requirements-nodeps.txt | system-deps
	test -x $(PY) || python3 -m venv $(VENV)
	rm -f $(VENV)/.installed-*
	$(PIP) install -q "$$(grep -m1 '^pip==' requirements.txt)" $(PIP_QUIET)
	$(PIP) install -q "$$(grep -m1 '^torch==' requirements.txt)" $(PIP_QUIET)
	$(PIP) install -q -r requirements.txt $(PIP_QUIET)
	$(PIP) install -q --no-deps -r requirements-nodeps.txt $(PIP_QUIET)
	touch $@

# --symlink-install: the installed pdn_ros points at this source tree, so tests and console
# scripts always run the current code; the stamp only tracks what changes the install itself.
$(BUILD_STAMP): $(VENV_STAMP) $(BUILD_INPUTS)
	$(MAKE) --no-print-directory build

build: $(VENV_STAMP)
	env $(ROS_ENV) $(COLCON) build $(COLCON_PATHS) --symlink-install \
	  --cmake-args -DPython3_EXECUTABLE=$(PY) -DBUILD_TESTING=OFF
	touch $(BUILD_STAMP)

# Tests run inside a fresh network namespace whose only interface is loopback, where
# permitted; the SHM-only DDS profile applies either way.
test: setup
	@status=0; \
	if unshare -n true >/dev/null 2>&1; then \
	  echo "Running colcon test in a loopback-only network namespace (unshare -n)"; \
	  env $(ROS_ENV) unshare -n sh -c 'ip link set lo up && exec "$$@"' sh $(COLCON_TEST) \
	    || status=1; \
	else \
	  echo "NOTICE: unshare -n is not permitted here; running colcon test in the host network" \
	    "namespace (the SHM-only DDS profile still keeps ROS traffic on this host)"; \
	  env $(ROS_ENV) $(COLCON_TEST) || status=1; \
	fi; \
	env $(ROS_ENV) $(COLCON) test-result --verbose || status=1; \
	$(RUFF) check . || status=1; \
	exit $$status

lint: $(VENV_STAMP)
	$(RUFF) check .

# Runs a command in the sourced workspace (pdn_msgs importable, console scripts found).
IN_WORKSPACE := env $(ROS_ENV) bash -c 'source install/setup.bash && exec "$$@"' pdn

# The demo: the synthetic 4K camera and pdn_node with the trained demo model (ONNX Runtime on
# the CPU), started through pdn-launch over the SHM-only DDS profile above, watched by a
# listener that prints a status line every second. It stops by itself after DEMO_SECONDS and
# leaves annotated frames, a contact sheet and the processes' log in out/demo/. Every process
# it starts runs in its own process group tied to the demo's life (stopped on exit, Ctrl-C,
# SIGTERM, and sent SIGTERM by the kernel if the demo itself is killed).
DEMO_SECONDS ?= 30
DEMO_MODEL ?= models/pdn-s-synth4k-3840x2160.onnx

demo: setup
	$(IN_WORKSPACE) $(PY) -m pdn_ros.tools.demo --model $(DEMO_MODEL) --seconds $(DEMO_SECONDS) \
	  --out out/demo

clean:
	rm -rf build install log out .pytest_cache .ruff_cache *.egg-info
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
