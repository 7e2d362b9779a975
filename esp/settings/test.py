"""The test suite runs on the same PostgreSQL and Redis; only slow, irrelevant parts change."""

from __future__ import annotations

import tempfile
from pathlib import Path

from esp.settings.base import *  # noqa: F403
from esp.settings.base import STORAGES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests do not depend on `collectstatic` having run.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
EMAIL_BACKEND = "esp.mail.OutboxBackend"
CACHES = {
    "default": {
        **CACHES["default"],
        "KEY_PREFIX": "esp-test",
    }
}
LOGGING = {**LOGGING, "root": {"handlers": ["stdout"], "level": "WARNING"}}
# A `make run` worker on the same Redis must not take the test suite's tasks.
CELERY_TASK_DEFAULT_QUEUE = "esp-test"
# Lets two suites run side by side on one server (e.g. a browser run next to the unit tests).
DATABASES["default"]["TEST"] = {"NAME": env.string("TEST_DATABASE_NAME", "test_" + DATABASES["default"]["NAME"])}
# Uploaded imports and built exports of the tests stay out of the local run's var/media.
MEDIA_ROOT = Path(tempfile.gettempdir()) / "esp-test-media"
