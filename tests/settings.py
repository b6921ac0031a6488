"""Test settings: fixed test keys, then the real settings."""

import os

from cryptography.fernet import Fernet

os.environ["DJANGO_SECRET_KEY"] = "test-secret-key-not-for-production-" + "x" * 20
os.environ["FIELD_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
os.environ["BLIND_INDEX_KEY"] = "test-blind-index-key"
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ["SIMREG_ENV_FILE"] = os.devnull

from simreg.settings import *  # noqa: F403
from simreg.settings import BASE_DIR, DATABASES

ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Flushing a test database must get past the audit table's append-only triggers.
DATABASES["default"]["ENGINE"] = {
    "django.db.backends.sqlite3": "tests.backends.sqlite3",
    "django.db.backends.postgresql": "tests.backends.postgresql",
}[DATABASES["default"]["ENGINE"]]
# A file, not memory, so that tests can scan the database file for plaintext. The name can be
# set so that two runs at once (or two checkouts on one PostgreSQL server) do not collide.
TEST_DB_NAME = os.environ.get("SIMREG_TEST_DB_NAME", "test")
if DATABASES["default"]["ENGINE"] == "tests.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"{TEST_DB_NAME}.sqlite3")}
elif "SIMREG_TEST_DB_NAME" in os.environ:
    DATABASES["default"]["TEST"] = {"NAME": TEST_DB_NAME}
# Static files come from the app folders (no collectstatic in tests).
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
