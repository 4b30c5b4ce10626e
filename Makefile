# The two commands: `make demo` (set up, seed, serve on 127.0.0.1:8000) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_ENV := DEBUG=true
DEMO_ACCOUNTS ?= 5000
DEMO_WEEKS ?= 53

.PHONY: install demo seed serve test lint clean

$(STAMP): requirements.lock package.json package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

install: $(STAMP)

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

clean:
	rm -rf $(VENV) node_modules var
