# hearthgate — the two commands: `make run` and `make test` (plus `make bench`).
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TESTSTAMP := $(VENV)/.installed-test
LINTED := $(wildcard governance proxy tests bench deploy)

.PHONY: run test bench lint typecheck check clean schema

$(PY):
	@interp=$$(tools/find-python) || exit 1; \
	echo "creating $(VENV) with $$interp"; \
	"$$interp" -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e .
	@touch $@

$(TESTSTAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@ $(STAMP)

run: $(STAMP)
	$(VENV)/bin/hearthgate run --rules rules/household.yaml --state-dir var

test: $(TESTSTAMP)
	tools/ensure-test-packages
	tools/ensure-deploy-tools
	tools/ensure-browser
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/mypy governance proxy
	$(PY) -m pytest -q

bench: $(TESTSTAMP)
	$(PY) -m bench.run

lint: $(TESTSTAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

typecheck: $(TESTSTAMP)
	$(VENV)/bin/mypy governance proxy

check: lint typecheck test

schema: $(STAMP)
	$(PY) -m proxy.catalog.services > proxy/catalog/services.json.new
	mv proxy/catalog/services.json.new proxy/catalog/services.json
	rm -f proxy/rules/schema.json  # made afresh, not the packaged copy printed back
	$(VENV)/bin/hearthgate rules schema > proxy/rules/schema.json.new
	mv proxy/rules/schema.json.new proxy/rules/schema.json
	cp proxy/rules/schema.json rules/schema.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
