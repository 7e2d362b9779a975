# syntax=docker/dockerfile:1
# Production image of the Mini ESP: one image for web (gunicorn), worker and beat (celery).
# docker-compose.yml shows how the three services run it; `migrate` runs in the web service's
# command, never at build time. Build: docker build -t mini-esp .

# --- Stage 1: front-end libraries from npm (Node exists only in this stage) -----------------
FROM node:22-bookworm-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# Same files as the Makefile target static/vendor/.built.
RUN mkdir -p vendor/htmx vendor/chartjs vendor/pico \
 && cp node_modules/htmx.org/dist/htmx.min.js vendor/htmx/ \
 && cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/dist/chart.umd.min.js.map vendor/chartjs/ \
 && cp node_modules/@picocss/pico/css/pico.min.css vendor/pico/

# --- Stage 2: the application -----------------------------------------------------------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=esp.settings.base \
    WEB_CONCURRENCY=2

RUN groupadd --system --gid 10001 esp \
 && useradd --system --uid 10001 --gid esp --home-dir /app --no-create-home --shell /usr/sbin/nologin esp

WORKDIR /app

# Runtime dependencies only (requirements-dev.txt is for tests and linters). All pins ship
# binary wheels for CPython 3.11 on x86_64, so no compiler is needed.
COPY requirements.txt ./
RUN python -m venv /opt/venv \
 && pip install --upgrade pip \
 && pip install -r requirements.txt

# Code is owned by root and read-only for the app user; only var/ is writable (media files,
# and var/secret_key if SECRET_KEY were ever left unset).
COPY . .
COPY --from=assets /build/vendor/ static/vendor/

# Static files are fingerprinted and compressed for whitenoise; settings need syntactically
# valid service URLs to load (nothing connects), and a throwaway SECRET_KEY so that settings do
# not write a generated key into var/ of the image.
RUN DATABASE_URL=postgres://unused/unused \
    CELERY_BROKER_URL=redis://unused \
    SECRET_KEY=build-time-only-not-a-secret \
    python manage.py collectstatic --no-input --verbosity 0 \
 && python -m esp.i18n compile \
 && mkdir -p var/media \
 && chown -R esp:esp var

USER esp

EXPOSE 8000

# --no-control-socket: gunicorn would otherwise try to create $HOME/.gunicorn/gunicorn.ctl, and
# the app user's home (/app) is read-only to it (a non-fatal ERROR line at every start).
CMD ["gunicorn", "esp.wsgi", "--bind", "0.0.0.0:8000", "--threads", "4", \
     "--graceful-timeout", "10", "--no-control-socket"]
