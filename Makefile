# The two commands: `make demo` (set up, seed, serve on 127.0.0.1:8000) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_ENV := DEBUG=true
DEMO_ACCOUNTS ?= 5000
DEMO_WEEKS ?= 53

# Two locks, both with hashes: requirements.lock is what production runs, requirements-dev.lock
# adds the test and development tools at the same versions. `make lock` regenerates both from
# pyproject.toml (LOCK_ARGS="--upgrade-package NAME" to move one package).
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links

.PHONY: install install-production lock demo seed serve test lint typecheck clean

$(STAMP): requirements.lock requirements-dev.lock package.json package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		-r requirements.lock -r requirements-dev.lock
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

install: $(STAMP)

# Production: the production lock only (no test tools), and the front-end packages it serves.
install-production:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		-r requirements.lock
	npm ci --omit=dev --no-audit --no-fund --loglevel=error

lock: install
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file=requirements.lock pyproject.toml
	$(PIP_COMPILE) $(LOCK_ARGS) --extra=dev --constraint=requirements.lock \
		--output-file=requirements-dev.lock pyproject.toml

demo: install
	mkdir -p var
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEMO_ENV) $(BIN)/python manage.py seed_demo --accounts $(DEMO_ACCOUNTS) $(if $(DEMO_PASSWORD),--password=$(DEMO_PASSWORD),) --logins-file var/demo-logins.txt
	$(DEMO_ENV) $(BIN)/python manage.py compute_metrics --last $(DEMO_WEEKS) --no-progress
	@cat var/demo-logins.txt
	$(DEMO_ENV) $(BIN)/python manage.py runserver 127.0.0.1:8000

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

clean:
	rm -rf $(VENV) node_modules var
