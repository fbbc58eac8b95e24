# Entry points for developers and CI. Every target creates .venv on first use
# and reuses it afterwards (it is reinstalled only when requirements change).
SHELL := /bin/bash
# The toolchain: LANE=newest (the default) is the newest ansible-core, on
# which the whole suite runs, in .venv with a Python 3.12+ (scripts/find-python;
# PYTHON=/path/to/python3.13 chooses one); LANE=oldest is the oldest core
# claimed (meta/runtime.yml), in .venv-oldest: `make lint LANE=oldest`,
# `make molecule LANE=oldest S=default`.
LANE ?= newest
ifeq ($(LANE),oldest)
VENV := .venv-oldest
REQUIREMENTS := requirements-oldest.txt
PYTHON_MIN := 3.11
# Molecule's instances and state of this lane are its own (scripts/molecule).
export WSGI_STACK_LANE := -oldest
else ifeq ($(LANE),newest)
VENV := .venv
REQUIREMENTS := requirements.txt
PYTHON_MIN := 3.12
else
$(error LANE must be newest or oldest, got $(LANE))
endif
BIN := $(VENV)/bin
# The toolchain's commands come from the venv, Molecule's subprocesses included.
export PATH := $(CURDIR)/$(BIN):$(PATH)
# wsgi.stack resolves to this checkout through a symlink (see $(COLLECTION_LINK)),
# so tests always run the working tree and nothing is copied into ~/.ansible.
# The dependencies come from the venv's `ansible` package (scanned from sys.path).
COLLECTIONS := $(CURDIR)/.cache/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/wsgi/stack
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)

DISTROS ?= debian12 debian13
S ?= python
D ?= debian12

.DEFAULT_GOAL := help
.PHONY: help venv lint docs unit build images molecule test bench demo demo-clean clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# A venv whose Python is too old for its lane (one made before the lanes) is made anew.
$(BIN)/.installed: $(REQUIREMENTS) requirements-tools.txt
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] < tuple(map(int, "$(PYTHON_MIN)".split("."))))' 2>/dev/null || \
	  { rm -rf $(VENV) && python=$$(scripts/find-python $(PYTHON_MIN)) && $$python -m venv $(VENV); }
	$(BIN)/pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
	@touch $@

$(COLLECTION_LINK):
	@mkdir -p $(@D)
	ln -sfn ../../../.. $@

venv: $(BIN)/.installed $(COLLECTION_LINK) ## Create or update the toolchain in .venv

# ansible-lint's syntax check loads the app scenario's vaulted test variables.
lint: venv ## yamllint, ansible-lint (production profile), ansible-test sanity, changelog, EE context, role docs
	scripts/check-vaults
	scripts/check-inventories
	scripts/check-readme
	$(BIN)/python scripts/role-docs --check
	yamllint --strict .
	ANSIBLE_VAULT_PASSWORD_FILE=molecule/app/vault-password ansible-lint
	antsibull-changelog lint
	scripts/check-ee
	scripts/sanity

docs: venv ## Write each role README's variables table from its meta/argument_specs.yml
	$(BIN)/python scripts/role-docs

# The plugins import as ansible_collections.wsgi.stack through the link.
unit: venv ## Unit tests of the collection's plugins (pytest, no containers)
	PYTHONPATH=$(COLLECTIONS) pytest tests/unit

build: venv ## Build the collection tarball and check nothing test-only is in it
	scripts/check-build

images: ## Build the local base images (REBUILD=1 to force)
	scripts/ensure-docker
	scripts/build-image $(DISTROS)

molecule: venv ## One scenario on one distro: make molecule S=python D=debian13 [C=converge]
	scripts/molecule $(S) $(D) $(or $(C),test)

test: venv ## Lint, unit tests, build and every Molecule scenario on every distro
	DISTROS="$(DISTROS)" scripts/test-matrix

bench: venv ## Time deploys, load the demo stack, compare Gunicorn worker settings: writes docs/benchmarks.md
	scripts/bench-report $(D)

demo: venv ## Deploy the example app into a local container (https://hello.localhost:8443)
	scripts/demo

demo-clean: ## Remove the demo container
	scripts/demo clean

clean: ## Remove the venvs and built tarballs (images stay; see README)
	rm -rf .venv .venv-oldest wsgi-stack-*.tar.gz
