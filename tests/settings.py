"""Test settings: fixed test keys, then the real settings."""

import os

from cryptography.fernet import Fernet

os.environ["DJANGO_SECRET_KEY"] = "test-secret-key-not-for-production-" + "x" * 20
os.environ["FIELD_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
os.environ["BLIND_INDEX_KEY"] = "test-blind-index-key"
# A fixed Ed25519 seed for the audit checkpoints (tests sign and check with it).
os.environ["AUDIT_SIGNING_KEY"] = "dGVzdC1hdWRpdC1zaWduaW5nLWtleS0zMi1ieXRlcyE="
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ["SIMREG_ENV_FILE"] = os.devnull

from simreg.settings import *  # noqa: F403
from simreg.settings import BASE_DIR, DATABASES

ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The private storage (document copies, audit exports): a folder of each test by default
# (tests/conftest.py: private_storage); with SIMREG_TEST_S3_ENDPOINT, a bucket of that
# S3-compatible server made for this test run, each test under a prefix of its own
# (`make test-s3` starts one on loopback: .ci/s3.sh).
S3_TEST_ENDPOINT = os.environ.get("SIMREG_TEST_S3_ENDPOINT", "")
S3_TEST_BUCKET = os.environ.get("SIMREG_TEST_S3_BUCKET") or f"simreg-test-{os.getpid()}"
if S3_TEST_ENDPOINT:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "simreg-test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "simreg-test-secret")
PRIVATE_STORAGE = (
    {
        "BACKEND": "registrations.storage.PrivateS3Storage",
        "OPTIONS": {
            "bucket_name": S3_TEST_BUCKET,
            "endpoint_url": S3_TEST_ENDPOINT,
            "region_name": "us-east-1",
        },
    }
    if S3_TEST_ENDPOINT
    else {"BACKEND": "registrations.storage.PrivateFileSystemStorage"}
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "private": PRIVATE_STORAGE,
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
