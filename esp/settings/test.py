"""The test suite runs on the same PostgreSQL and Redis; only slow, irrelevant parts change."""

from __future__ import annotations

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
