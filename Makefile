# Swarmdeck: `make run` starts everything on this machine, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test check migrate shell clean-var

run: $(STAMP)
	$(PY) -m controlcenter.launcher

# The suite runs in TEST_WORKERS pytest-xdist processes (tests/parallel.py keeps them apart);
# TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

check: $(STAMP)
	$(PY) -m ruff check .
	SECRET_KEY=$${SECRET_KEY:-make-check} REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} $(PY) manage.py check

migrate: $(STAMP)
	$(PY) manage.py migrate

shell: $(STAMP)
	$(PY) manage.py shell

# (Re)install when requirements.txt changes; a half-finished install is redone next time.
$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

clean-var:
	rm -rf var
