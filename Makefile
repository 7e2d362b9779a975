# The two commands a newcomer needs: `make run` and `make test` (see README.md).
# Everything else here is a step those two take; each step is skipped when already done.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LAUNCHER := $(PY) -m esp.embedded
PYTEST_ARGS ?=
# Settings need service URLs and a key to load; steps that only read code (collectstatic,
# mypy's Django plugin) get syntactically valid ones that nothing connects to.
OFFLINE_ENV := DATABASE_URL=postgres://unused/unused CELERY_BROKER_URL=redis://unused SECRET_KEY=offline-only

.PHONY: run test setup assets messages collectstatic browser pgbouncer lint check-embedded manage clean

run: setup
	$(LAUNCHER) run

test: setup browser pgbouncer
	$(LAUNCHER) test $(PYTEST_ARGS)

setup: $(VENV)/.installed assets messages

$(VENV)/.installed: requirements.txt requirements-embedded.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Front-end libraries come from npm (package.json + package-lock.json), copied into
# static/vendor; collectstatic then fingerprints and compresses them for whitenoise.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

static/vendor/.built: node_modules/.installed
	mkdir -p static/vendor/htmx static/vendor/chartjs static/vendor/pico
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx/
	cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/dist/chart.umd.min.js.map static/vendor/chartjs/
	cp node_modules/@picocss/pico/css/pico.min.css static/vendor/pico/
	touch $@

assets: static/vendor/.built collectstatic

collectstatic: static/vendor/.built $(VENV)/.installed
	$(OFFLINE_ENV) $(PY) manage.py collectstatic --no-input --verbosity 0

# Translation catalogues: .po files are the source, .mo files are built (polib, no gettext needed).
messages: $(VENV)/.installed
	$(PY) -m esp.i18n compile

# Browser tests drive Debian's Chromium; install it when missing and we may (root + apt).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: browser tests will be skipped (install Debian's chromium)"; fi; }

# The send path's tests and bench/send.py --pgbouncer run through Debian's PgBouncer (started by
# the test itself, transaction pooling); install it when missing and we may (root + apt).
pgbouncer:
	@test -x /usr/sbin/pgbouncer || command -v pgbouncer >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null; \
	  else echo "pgbouncer is missing: the PgBouncer tests will be skipped (install Debian's pgbouncer)"; fi; }

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(OFFLINE_ENV) $(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

# CI's bare-machine proof: embedded servers start, migrations apply, /healthz answers 200.
check-embedded: setup
	env -u DATABASE_URL -u CELERY_BROKER_URL $(LAUNCHER) --port $${CHECK_PORT:-8765} check

# Any manage.py command on the same servers: make manage ARGS="createsuperuser"
manage: setup
	$(LAUNCHER) exec -- $(PY) manage.py $(ARGS)

clean:
	rm -rf $(VENV) node_modules static/vendor staticfiles
