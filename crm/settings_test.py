"""Settings for the test suite: the real settings module, with test-only defaults.

DATABASE_URL and REDIS_URL still come from the environment, so the same suite runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-used-anywhere-else")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
os.environ.setdefault("SESSION_COOKIE_SECURE", "false")
os.environ.setdefault("CSRF_COOKIE_SECURE", "false")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
# Tests decide per case whether Redis is involved; the default is in-process.
os.environ.setdefault("REDIS_URL", "")

from crm.settings import *  # noqa: E402,F403
from crm.settings import VAR_DIR  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "test-private"
# Static files come from the finders in tests; there is no collectstatic output to scan.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
