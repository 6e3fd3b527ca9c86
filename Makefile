# BrightRun developer commands. Each target sets up what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export BRIGHTRUN_HOME ?= $(CURDIR)/.brightrun

.PHONY: venv protos test test-fast demo up clean

# The venv is rebuilt when pyproject.toml changes. torch is pinned in
# pyproject.toml to the CPU build that lies on these machines' disk.
# DS_BUILD_OPS=0: DeepSpeed installs without compiling its C++/CUDA ops.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	DS_BUILD_OPS=0 $(PY) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

protos: venv
	$(PY) protos/generate.py

test: venv
	$(PY) -m pytest -ra

test-fast: venv
	$(PY) -m pytest -ra -m "not slow"

demo: venv
	$(PY) -m services.platform demo

up: venv
	$(PY) -m services.platform up

clean:
	rm -rf $(VENV) .pytest_cache
