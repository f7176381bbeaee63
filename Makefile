# Local run, test and bench entry points. GNU make on a fresh Debian machine:
# everything the project needs is installed from pyproject.toml (and
# package.json once it exists) into .venv.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
VENV_BIN := $(VENV)/bin
PYTHON := $(VENV_BIN)/python
MANAGE := $(PYTHON) manage.py
PORT ?= 8000
PYTEST_ARGS ?=
BENCH_ARGS ?=
BENCH_DATABASE_URL := postgres://postgres@127.0.0.1:5432/secops_bench

# --- Finding an interpreter --------------------------------------------------
# Django 6 needs Python 3.12+. The version pinned in .python-version comes
# first (pyenv's shims resolve it inside this tree); then any 3.13/3.12 on
# PATH or under pyenv; plain python3 last. Override the list to name one:
#   make run PYTHON_CANDIDATES=/opt/python3.13/bin/python3
PYENV_ROOT ?= $(HOME)/.pyenv
PINNED_PYTHON := $(strip $(shell cat .python-version 2>/dev/null))
uniq = $(if $1,$(firstword $1) $(call uniq,$(filter-out $(firstword $1),$1)))
PYTHON_CANDIDATES ?= $(call uniq, \
	$(if $(PINNED_PYTHON),python$(PINNED_PYTHON)) \
	python3.13 python3.12 \
	$(sort $(wildcard $(PYENV_ROOT)/versions/3.13*/bin/python)) \
	$(sort $(wildcard $(PYENV_ROOT)/versions/3.12*/bin/python)) \
	python3)

# Prints the path of the first candidate that is Python 3.12 or newer; when
# none is, says what was found and fails.
define find_python
found=""; \
for candidate in $(PYTHON_CANDIDATES); do \
	path=$$(command -v "$$candidate" 2>/dev/null) || continue; \
	if "$$path" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then \
		echo "$$path"; exit 0; \
	fi; \
	version=$$("$$path" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null); \
	found="$$found $$candidate ($${version:-not a working Python})"; \
done; \
echo "Python 3.12 or newer is required; found:$${found:- no Python at all} (tried: $(strip $(PYTHON_CANDIDATES))). Install it (e.g. pyenv install 3.12, or apt-get install python3 on Debian 13) or name one with PYTHON_CANDIDATES=/path/to/python3." >&2; \
exit 1
endef

.PHONY: help python-check run test lint bench load clean vendor chromium

help:
	@echo "make run     serve the console on http://127.0.0.1:$(PORT)/ with demo data"
	@echo "make test    ruff, Django checks, migration check, then pytest (PYTEST_ARGS=...)"
	@echo "make lint    ruff check and ruff format --check"
	@echo "make bench   python -m bench against PostgreSQL (BENCH_ARGS=...)"
	@echo "make load    load test: gunicorn, 2 Celery workers, alerts at LOAD_RATE/s and LOAD_ANALYSTS analysts for LOAD_DURATION s"
	@echo "make clean   remove .venv, var/ and static/vendor"

python-check:
	@python=$$($(find_python)) || exit 1; \
	echo "Using $$python ($$("$$python" -c 'import sys; print(sys.version.split()[0])'))"

# --- Virtual environment -----------------------------------------------------
$(PYTHON):
	@python=$$($(find_python)) || exit 1; \
	echo "Creating $(VENV) with $$python"; \
	"$$python" -m venv --clear $(VENV)

# Each stamp records that the dependencies of pyproject.toml are installed;
# a change to pyproject.toml re-installs them, nothing else does.
$(VENV)/.installed-run: pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[test]'
	@touch $@

# Front-end libraries that no Python package ships come from package.json
# (pinned by its lock, installed again only when the lock changes) and are
# copied into static/vendor by its "vendor" script.
vendor:
	@if [ -f package.json ]; then \
		if [ ! -d node_modules ] || [ ! package-lock.json -ot node_modules ]; then \
			npm ci --no-audit --no-fund; \
		fi; \
		npm run vendor --if-present; \
	fi

# --- make run ----------------------------------------------------------------
# runserver with --noreload: this target serves the console rather than a
# development loop, and without the reloader the web server and the beat
# process beside it always run the same code (beat never reloads), and no
# file-polling thread competes for the CPU.
#
# Without REDIS_URL (the embedded default) settings run Celery tasks eagerly,
# so beat executes each periodic task inside its own process. With REDIS_URL
# tasks go to Redis, and a worker is started too so that they run.
#
# Every process runs in the background and the shell waits for the server:
# a shell only handles a signal once its foreground command has finished, so
# this way Ctrl-C or a TERM to make stops the server and beat at once.
run: $(VENV)/.installed-run vendor
	@set -euo pipefail; \
	export DEBUG="$${DEBUG:-true}" PORT="$(PORT)"; \
	$(MANAGE) migrate --noinput; \
	$(MANAGE) collectstatic --noinput --verbosity 0; \
	$(MANAGE) seed_demo; \
	pids=(); \
	stop_background() { \
		kill "$${pids[@]}" 2>/dev/null || true; \
		wait "$${pids[@]}" 2>/dev/null || true; \
	}; \
	trap stop_background EXIT; \
	trap 'exit 130' INT; \
	trap 'exit 143' TERM; \
	$(VENV_BIN)/celery -A secops beat --loglevel info & pids+=($$!); \
	if [ -n "$${REDIS_URL:-}" ]; then \
		$(VENV_BIN)/celery -A secops worker --loglevel info & pids+=($$!); \
	fi; \
	$(MANAGE) runserver --noreload "127.0.0.1:$(PORT)" & server=$$!; pids+=($$server); \
	echo ""; \
	echo "The console is at http://127.0.0.1:$(PORT)/ (Ctrl-C stops it)."; \
	echo ""; \
	wait "$$server"

# --- make test ---------------------------------------------------------------
# DEBUG=true lets settings load without a SECRET_KEY; Django's test runner
# still runs the tests with DEBUG off. DATABASE_URL and REDIS_URL pass through
# from the caller, so the same suite runs on SQLite or on PostgreSQL and Redis.
test: export DEBUG := true
test: $(VENV)/.installed-test vendor chromium
	$(VENV_BIN)/ruff check .
	$(MANAGE) check
	$(MANAGE) makemigrations --check --dry-run
	$(VENV_BIN)/pytest $(PYTEST_ARGS)

# Browser tests drive Debian's Chromium (Playwright's own browser download is
# not used).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
		else \
			echo "Note: /usr/bin/chromium is missing, so the browser tests cannot run." \
				"Install it with: sudo apt-get install chromium"; \
		fi; \
	fi

lint: $(VENV)/.installed-test
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/ruff format --check .

# --- make bench --------------------------------------------------------------
bench: $(VENV)/.installed-test
	@if [ ! -d bench ]; then \
		echo "make bench: there is no bench/ package in this tree, so there is nothing to run." >&2; \
		exit 1; \
	fi
	DEBUG="$${DEBUG:-true}" DATABASE_URL="$${DATABASE_URL:-$(BENCH_DATABASE_URL)}" $(PYTHON) -m bench $(BENCH_ARGS)

# --- make load ---------------------------------------------------------------
# python -m bench.load starts gunicorn, two Celery workers and beat against its
# own PostgreSQL database and Redis database (LOAD_DATABASE_URL, LOAD_REDIS_URL)
# and stops them when it ends; LOAD_DURATION, LOAD_RATE and LOAD_ANALYSTS pass
# through from the caller. See docs/load.md.
load: $(VENV)/.installed-test vendor
	$(PYTHON) -m bench.load

clean:
	rm -rf $(VENV) var static/vendor
