# Entry points for developers and CI. Every target creates .venv on first use
# and reuses it afterwards (it is reinstalled only when requirements.txt changes).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
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

$(BIN)/.installed: requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(COLLECTION_LINK):
	@mkdir -p $(@D)
	ln -sfn ../../../.. $@

venv: $(BIN)/.installed $(COLLECTION_LINK) ## Create or update the toolchain in .venv

# ansible-lint's syntax check loads the app scenario's vaulted test variables.
lint: venv ## yamllint, ansible-lint (production profile), vault files encrypted, README commands, role docs
	scripts/check-vaults
	scripts/check-inventories
	scripts/check-readme
	$(BIN)/python scripts/role-docs --check
	yamllint --strict .
	ANSIBLE_VAULT_PASSWORD_FILE=molecule/app/vault-password ansible-lint

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

bench: venv ## Time deploys, load the demo stack, compare Gunicorn worker settings (prints numbers)
	scripts/bench-deploy $(D)
	scripts/bench-stack $(D)
	scripts/bench-load
	scripts/bench-workers

demo: venv ## Deploy the example app into a local container (https://hello.localhost:8443)
	scripts/demo

demo-clean: ## Remove the demo container
	scripts/demo clean

clean: ## Remove the venv and built tarballs (images stay; see README)
	rm -rf $(VENV) wsgi-stack-*.tar.gz
