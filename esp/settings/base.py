"""Settings for every environment. Each value comes from the environment (see README).

When DATABASE_URL / CELERY_BROKER_URL are unset, the URLs of the embedded PostgreSQL and Redis
are used, as the launcher (esp/embedded.py) wrote them to var/embedded.env. There is no
SQLite or in-memory fallback: the code always runs on PostgreSQL and Redis.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import django_stubs_ext
from celery.schedules import crontab
from django.utils.translation import gettext_lazy as _

from esp.settings.env import Env, EnvError, read_env_file

# Lets classes be subscripted for the type checker (admin.ModelAdmin[Model]) at run time too.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"
EMBEDDED_ENV_FILE = VAR_DIR / "embedded.env"

env = Env()
embedded = read_env_file(EMBEDDED_ENV_FILE)


def _service_url(name: str) -> str:
    value = env.raw(name) or embedded.get(name)
    if not value:
        raise EnvError(
            f"{name} is not set and the embedded servers are not running. Set {name}, or run "
            "commands through the launcher: `make run`, `make test`, or "
            "`.venv/bin/python -m esp.embedded exec -- python manage.py ...`."
        )
    return value


# A local run: started by the launcher, or a manage.py next to it using var/embedded.env.
LOCAL_RUN = env.boolean("ESP_LAUNCHER", False) or (not env.raw("DATABASE_URL") and bool(embedded))


def _secret_key() -> str:
    value = env.raw("SECRET_KEY")
    if value:
        return value
    if not LOCAL_RUN:
        raise EnvError(
            "SECRET_KEY is not set. Set it to a long random value shared by web, worker and beat "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    # Local runs through the launcher keep a generated key in var/, so sessions and signed
    # links survive a restart.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


DEBUG = env.boolean("DEBUG", False)
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.strings("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.strings("CSRF_TRUSTED_ORIGINS", [])
# Absolute base URL for links in emails (password reset, invitations, later unsubscribe links).
PUBLIC_BASE_URL = env.string("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Outside a local run, web, worker and beat refuse to start with a plain-http PUBLIC_BASE_URL
# unless this says it is meant (esp/checks.py).
ALLOW_HTTP_PUBLIC_URL = env.boolean("ALLOW_HTTP_PUBLIC_URL", False)
# Encrypts stored provider credentials (campaigns.crypto). Empty: a key derived from SECRET_KEY,
# so rotating SECRET_KEY makes stored credentials unreadable. Set it to a Fernet key
# (python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')
# to keep credentials independent of SECRET_KEY; several keys, comma-separated, rotate: the
# first encrypts, every one decrypts.
ESP_ENCRYPTION_KEY = env.string("ESP_ENCRYPTION_KEY", "")
# Render and write emails the plain Django way: Django's template nodes and filters instead of
# the render plan and memoised filters, Django's EmailMessage.message().as_bytes() instead of
# the MIME writer of campaigns.delivery.composer. The same bytes (tests/campaigns/
# test_render_equality.py), several times slower: the reference, and the way out should a
# Django upgrade make them differ.
ESP_RENDER_PLAIN_DJANGO = env.boolean("ESP_RENDER_PLAIN_DJANGO", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "anymail",
    "esp",
    "audiences",
    "campaigns",
    "automations",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "esp.middleware.RequestLogMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "esp.middleware.UserLanguageMiddleware",
    "esp.middleware.CurrentWorkspaceMiddleware",
    # After the user and workspace are known, so its 400 page has the usual layout.
    "esp.input.UnstorableInputMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "esp.urls"
WSGI_APPLICATION = "esp.wsgi.application"
AUTH_USER_MODEL = "esp.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "esp.context_processors.workspace",
                # The deliverability warning of base.html (one cached read, only when shown).
                "analytics.context_processors.deliverability",
            ],
        },
    },
]

DATABASES = {"default": env.database("DATABASE_URL", _service_url("DATABASE_URL"))}
# `pgbouncer`: DATABASE_URL reaches PostgreSQL through PgBouncer in transaction pooling, where
# each transaction may run on another server connection. Django's server-side cursors
# (`.iterator()`, declared WITH HOLD outside a transaction) would then be fetched from a
# connection that never saw them. (The code keeps no other session state: no PREPARE, no
# session advisory locks, SET only as SET LOCAL.)
DATABASE_POOLER = env.choice("DATABASE_POOLER", "", ["", "pgbouncer"])
if DATABASE_POOLER == "pgbouncer":
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker, result backend and the shared cache (API throttling, rate limits) ---
CELERY_BROKER_URL = env.redis_url("CELERY_BROKER_URL", _service_url("CELERY_BROKER_URL"))


def _redis_client_url(broker_url: str, db: int) -> str:
    """redis-py spelling of the broker URL for another database number."""
    if broker_url.startswith("redis+socket://"):
        return "unix://" + broker_url.removeprefix("redis+socket://").split("?")[0] + f"?db={db}"
    base = broker_url.rsplit("/", 1)[0] if broker_url.count("/") > 2 else broker_url
    return f"{base}/{db}"


CELERY_RESULT_BACKEND = env.string("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.string("CACHE_URL", _redis_client_url(CELERY_BROKER_URL, 1)),
        "KEY_PREFIX": env.string("CACHE_KEY_PREFIX", "esp"),
    }
}

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 3600
# A task is acknowledged only after it finished, so a worker killed mid-task leaves it to be
# redelivered; one task at a time per worker process keeps that redelivery small.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# DESIGN.md rule 2 ("the database holds time"): Redis re-delivers an unacknowledged task after
# `visibility_timeout`. With acks_late that includes every task still waiting in a worker, so
# nothing may be scheduled with an ETA/countdown longer than this: delays and schedules are
# rows with a `due_at` claimed by beat ticks. One hour is far above any task's run time and any
# retry backoff we use, so a healthy long task is never delivered twice.
CELERY_VISIBILITY_TIMEOUT_SECONDS = env.integer("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT_SECONDS}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT_SECONDS}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Written into django-celery-beat's tables at beat start, then editable in the admin.
CELERY_BEAT_SCHEDULE = {
    # A job whose worker died (kill -9, lost host) stops beating; it is requeued from its last
    # committed batch about half a minute later.
    "resume-stalled-imports": {"task": "audiences.resume_stalled_imports", "schedule": 15.0},
    "resume-stalled-exports": {"task": "audiences.resume_stalled_exports", "schedule": 15.0},
    "resume-stalled-bulk-actions": {"task": "audiences.resume_stalled_bulk_actions", "schedule": 15.0},
    # Ingested events whose processing was never sent (broker down) or never finished.
    "sweep-pending-events": {"task": "audiences.sweep_pending_events", "schedule": 60.0},
    # RFM scores and lifecycle stages move with time alone: rescored every night (UTC).
    "score-rfm-nightly": {"task": "audiences.score_rfm_all", "schedule": crontab(hour=2, minute=30)},
    # Segments with time-relative rules ("in the last 30 days"), changed or stale ones.
    "refresh-segments": {"task": "audiences.refresh_segments", "schedule": 15 * 60.0},
    # Messages fall due by the clock (quiet hours, retry backoffs, scheduled sends): a tick
    # starts a drain when none runs. Rows a dead worker held are sorted out every minute.
    "send-due-messages": {"task": "campaigns.send_messages", "schedule": 10.0},
    # Series: waits that end, timeouts, promo starts (the database holds time; rule 2).
    "run-due-enrollments": {"task": "automations.run_due_enrollments", "schedule": 5.0},
    # Outbound webhooks of series steps: first attempts and retries after their backoff.
    "deliver-webhooks": {"task": "automations.deliver_webhooks", "schedule": 10.0},
    # Date triggers: birthdays and predicted orders whose local moment came since the last check.
    "run-date-triggers": {"task": "automations.run_date_triggers", "schedule": 60.0},
    "recover-messages": {"task": "campaigns.recover_messages", "schedule": 60.0},
    # Broadcasts: scheduled ones whose time came are snapshotted; finished ones marked sent.
    "tick-broadcasts": {"task": "campaigns.tick_broadcasts", "schedule": 15.0},
    # Reports: new sends and events into the rollups (fresh within a minute), and a nightly
    # rebuild of the last days for sends the settle hook missed (analytics.rollups).
    "refresh-report-rollups": {"task": "analytics.refresh_rollups", "schedule": 15.0},
    "rebuild-recent-report-rollups": {"task": "analytics.rebuild_recent", "schedule": crontab(hour=3, minute=10)},
    # The journey, cohorts and list growth (from order events and subscriptions), deliverability
    # by mailbox provider, the nightly rebuild after the RFM scoring, and the KPI digests.
    "refresh-journey": {"task": "analytics.refresh_journey", "schedule": 60.0},
    "refresh-provider-days": {"task": "analytics.refresh_providers", "schedule": 300.0},
    "rebuild-journey": {"task": "analytics.rebuild_journey", "schedule": crontab(hour=3, minute=40)},
    "send-kpi-digests": {"task": "analytics.send_digests", "schedule": 15 * 60.0},
}
CELERY_TASK_ALWAYS_EAGER = False
# How many send drains run at once across all workers (campaigns.delivery.drain): at most the
# worker processes that may send; each holds one provider connection.
SEND_CONCURRENCY = env.integer("SEND_CONCURRENCY", 2, minimum=1)

# --- Auth, sessions, security ---
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_SECURE = env.boolean("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_AGE = env.integer("SESSION_COOKIE_AGE", 14 * 24 * 3600, minimum=300)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.boolean("BEHIND_HTTPS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The reverse proxies (load balancer, nginx) in front of the web processes: a request from one
# of them is from the address it names in X-Forwarded-For (consent records, open detection).
# From anyone else the header is ignored: a client could write anything in it.
TRUSTED_PROXIES = env.networks("TRUSTED_PROXIES")
# Host names (or literal addresses) that connections made on a tenant's behalf (SMTP hosts, ESP
# API URLs, webhooks) may reach although they resolve to a loopback or private address: a
# local relay, Mailpit. Everything else private is refused (esp.net).
OUTBOUND_ALLOWED_HOSTS = env.strings("OUTBOUND_ALLOWED_HOSTS", [])
INVITATION_MAX_AGE_DAYS = env.integer("INVITATION_MAX_AGE_DAYS", 7, minimum=1)

# --- Languages: every UI string is translatable; English and Russian catalogues ship ---
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ru", _("Russian"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

# --- Static files: built by `make assets` (npm packages copied into static/vendor) ---
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = Path(env.string("MEDIA_ROOT", str(VAR_DIR / "media")))

# --- Mail: the outbox stores every message in the database; SMTP for a real server ---
MAIL_TRANSPORT = env.choice("MAIL_TRANSPORT", "outbox", ["outbox", "smtp"])
EMAIL_BACKEND = {
    "outbox": "esp.mail.OutboxBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
}[MAIL_TRANSPORT]
EMAIL_HOST = env.string("SMTP_HOST", "localhost")
EMAIL_PORT = env.integer("SMTP_PORT", 25, minimum=1)
EMAIL_HOST_USER = env.string("SMTP_USER", "")
EMAIL_HOST_PASSWORD = env.string("SMTP_PASSWORD", "")
EMAIL_USE_TLS = env.boolean("SMTP_STARTTLS", False)
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = env.string("DEFAULT_FROM_EMAIL", "Mini ESP <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- REST API ---
# The tracking API (/v1/track, /v1/batch, ...) counts requests per key on its own budget: shop
# backends and SDKs send far more than REST calls (a batch request carries up to 500 events).
EVENTS_RATE_LIMIT = env.rate("EVENTS_RATE_LIMIT", "1000/s")
# A REST API body above this size is a 413 (a 10,000-contact bulk upsert is about 3 MB); JSON
# nesting deeper than API_MAX_JSON_DEPTH is a 400 (segment rules nest far less).
API_MAX_BODY_BYTES = env.integer("API_MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=1024)
API_MAX_JSON_DEPTH = env.integer("API_MAX_JSON_DEPTH", 32, minimum=8)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "esp.api.auth.ApiKeyAuthentication",
        # A logged-in member can use the API from the browser (interactive docs); CSRF applies.
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["esp.api.permissions.HasApiKeyScope"],
    "DEFAULT_THROTTLE_CLASSES": ["esp.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env.rate("API_RATE_LIMIT", "1200/min")},
    "DEFAULT_PAGINATION_CLASS": "esp.api.pagination.IdCursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["esp.api.parsers.SafeJSONParser"],
    "EXCEPTION_HANDLER": "esp.api.errors.json_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mini ESP API",
    "DESCRIPTION": (
        "Contacts, events, content and reports of one workspace. Authenticate with an API key: "
        "`Authorization: Bearer <key>`, or HTTP Basic with the key as user name (the Segment "
        "SDKs' write key)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Request bodies get components of their own: without read-only fields, with the
    # constraints input must meet (non-blank strings), so the document says what is accepted.
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status": each choice set gets its own name in the document.
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "audiences.models.SubscriptionStatus",  # the name it had while it was the only one
        "BroadcastStatusEnum": "campaigns.broadcast_models.BroadcastStatus",
        "StateEnum": "automations.models.EnrollmentState",  # likewise
        "AbStateEnum": "campaigns.broadcast_models.AbState",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "esp.api.schema.document_errors",
    ],
}

# --- Logging: one JSON object a line on stdout (LOG_FORMAT=text for humans) ---
LOG_LEVEL = env.choice("LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR"])
LOG_FORMAT = env.choice("LOG_FORMAT", "json", ["json", "text"])
LOG_LEVEL_CELERY = env.choice("LOG_LEVEL_CELERY", "WARNING", ["DEBUG", "INFO", "WARNING", "ERROR"])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
    },
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        # Beat sends the send loop's tick every 10 s: at INFO, Celery's own "Sending due task",
        # "received" and "succeeded" lines for it would bury everything else. Our tasks log
        # what they did themselves (e.g. "sent due messages" with counts) when they did something.
        "celery.beat": {"level": LOG_LEVEL_CELERY},
        "celery.worker.strategy": {"level": LOG_LEVEL_CELERY},
        "celery.app.trace": {"level": LOG_LEVEL_CELERY},
    },
}
