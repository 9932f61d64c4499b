# petra.core — development entry points. `make demo` and `make test` set up everything they need.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
DEPS_STAMP := $(VENV)/.petra-deps
DEBIAN_PACKAGES := docker-registry skopeo umoci zstd ignition openssl apache2-utils time gpg gpgv squashfs-tools chromium
# Sanity-test tooling ansible-test 2.19 expects; installed beside the dev requirements.
SANITY_PACKAGES := pylint==3.3.7 astroid==3.3.10 voluptuous==0.15.2 pycodestyle==2.13.0
BUILD := $(CURDIR)/.build
COLLECTIONS := $(BUILD)/collections
SANITY_ROOT := $(BUILD)/sanity/ansible_collections/petra/core
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
# ansible-lint and Molecule install the collection under ANSIBLE_HOME: keep that inside this checkout, so a copy
# left in ~/.ansible by another checkout (or an older run) is never what gets tested.
export ANSIBLE_HOME := $(BUILD)/ansible-home
export ANSIBLE_NOCOLOR := 1
export PATH := $(BIN):$(PATH)
ROLES := $(patsubst roles/%/molecule/default/molecule.yml,%,$(wildcard roles/*/molecule/default/molecule.yml))
MODULES := $(patsubst plugins/modules/%.py,%,$(wildcard plugins/modules/*.py))
PYTEST_ARGS ?=

.PHONY: help
help:
	@echo "make demo   build, sign, verify and tamper-check a bundle against a local registry (end to end)"
	@echo "make test   every test: pytest, import contracts, ansible-test sanity, ansible-lint, molecule, build + ansible-doc"
	@echo "make bench  create/verify/load throughput and memory against tar|zstd, zstd -dc|sha256sum and skopeo copy"
	@echo "make bench-large  create/verify/load of a single 6 GiB layer (about 20 GB of disk; not for CI)"

# ---- set-up ----------------------------------------------------------------------------------
.PHONY: system-deps
system-deps:
	@missing=""; \
	for package in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$package" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(DEPS_STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt $(SANITY_PACKAGES)
	touch $@

.PHONY: venv
venv: $(DEPS_STAMP)

# The collection as Ansible finds it: a link, so edits show at once.
.PHONY: collection
collection:
	mkdir -p $(COLLECTIONS)/ansible_collections/petra
	ln -sfn $(CURDIR) $(COLLECTIONS)/ansible_collections/petra/core

.PHONY: setup
setup: system-deps venv collection

# ---- tests -----------------------------------------------------------------------------------
.PHONY: test
test: setup pytest imports sanity lint molecule build-check
	@echo "make test: all suites passed"

# Three workers on two cores: much of the suite waits on its servers (registries, moto, kmock, ansible-playbook).
PYTEST_WORKERS ?= 3
.PHONY: pytest
pytest: setup
	cd $(COLLECTIONS)/ansible_collections/petra/core && PYTHONPATH=$(COLLECTIONS) \
	  $(BIN)/python -m pytest -n $(PYTEST_WORKERS) -p no:cacheprovider tests/unit tests/integration $(PYTEST_ARGS)

# The import contracts of .importlinter (layers, no Ansible below the adapters, thin plugins); a wrong import
# fails here with the contract's name.
.PHONY: imports
imports: setup
	PYTHONPATH=$(COLLECTIONS) $(BIN)/lint-imports --config $(CURDIR)/.importlinter --no-cache

# ansible-test needs the collection at .../ansible_collections/petra/core: a clean copy of the tree.
.PHONY: sanity
sanity: setup
	rm -rf $(SANITY_ROOT) && mkdir -p $(SANITY_ROOT)
	git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C $(SANITY_ROOT)
	cd $(SANITY_ROOT) && git init -q . && git add -A  # ansible-test finds its targets through git
	mkdir -p $(HOME)/.ansible/test/cache
	cp tests/sanity/get_pip_bootstrap.py $(HOME)/.ansible/test/cache/get_pip_24_2.py
	cd $(SANITY_ROOT) && $(BIN)/ansible-test sanity --local --python 3.11 --color no

.PHONY: lint
lint: setup
	$(BIN)/ansible-lint --profile production --offline

# Three scenarios at a time: most of a scenario's time is Ansible starting up and waiting on its servers, not CPU.
# Each has its own log (printed when it fails) and its own ANSIBLE_HOME, since Molecule installs the collection there.
MOLECULE_JOBS ?= 3
.PHONY: molecule
molecule: setup
	@mkdir -p $(BUILD)/molecule
	@printf '%s\n' $(ROLES) | xargs -P $(MOLECULE_JOBS) -I{} sh -c '\
	  log=$(BUILD)/molecule/{}.log; start=$$(date +%s); \
	  if (cd roles/{} && ANSIBLE_HOME=$(BUILD)/ansible-home-{} $(BIN)/molecule test) > $$log 2>&1; then \
	    echo "== molecule test: {} passed in $$(( $$(date +%s) - start )) s"; \
	  else echo "== molecule test: {} FAILED; its log:"; cat $$log; exit 1; fi' \
	  || { echo "molecule: a scenario failed (see its log above)"; exit 1; }

# What a user gets: the built collection installs, and every module's documentation renders.
.PHONY: build-check
build-check: setup
	rm -rf $(BUILD)/dist && mkdir -p $(BUILD)/dist
	$(BIN)/ansible-galaxy collection build --output-path $(BUILD)/dist .
	$(BIN)/ansible-galaxy collection install --force --no-deps -p $(BUILD)/dist/installed $(BUILD)/dist/petra-core-*.tar.gz
	@for module in $(MODULES); do \
	  ANSIBLE_COLLECTIONS_PATH=$(BUILD)/dist/installed $(BIN)/ansible-doc -j petra.core.$$module | grep -q '"doc"' \
	    || { echo "ansible-doc petra.core.$$module does not render"; exit 1; }; \
	  echo "ansible-doc petra.core.$$module renders"; \
	done

# ---- demo and benchmarks -----------------------------------------------------------------------
.PHONY: demo
demo: setup
	$(BIN)/python demo/run_demo.py

.PHONY: bench
bench: setup
	$(BIN)/python benchmarks/bench_bundle.py

# Outside CI: one image with a single 6 GiB layer (about 20 GB of disk), created, verified and loaded.
.PHONY: bench-large
bench-large: setup
	$(BIN)/python benchmarks/bench_bundle.py --large

.PHONY: clean
clean:
	rm -rf $(BUILD) demo-out bench-out tests/output
