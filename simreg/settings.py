"""simreg settings: everything comes from the environment and is secure by default.

Development keys live in a git-ignored `.env` file that `make run` generates; in production the
environment provides them and start-up stops when one is missing.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.utils.translation import gettext_lazy as _

from simreg.keys import KEY_HELP, load_env_file
from simreg.startup import StartupError

BASE_DIR = Path(__file__).resolve().parent.parent
load_env_file(Path(os.environ.get("SIMREG_ENV_FILE", BASE_DIR / ".env")))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def required_key(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise StartupError(
            f"{name} is not set. simreg will not start without it. Set it in the environment "
            f"(or run `make keys` for local development). Generate one with: {KEY_HELP[name]}"
        )
    return value


def fernet_keys(name: str) -> list[str]:
    """The comma-separated Fernet keys in `name`: each must be 32 url-safe base64-encoded bytes,
    or nothing could be encrypted or read, and the first request would fail instead."""
    keys = env_list(name) or [required_key(name)]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError, binascii.Error):
            raise StartupError(
                f"{name}: key number {position} of {len(keys)} is not a Fernet key (32 url-safe "
                f"base64-encoded bytes). simreg will not start with it. Generate one with: "
                f"{KEY_HELP[name]}"
            ) from None
    return keys


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = required_key("DJANGO_SECRET_KEY")

# Field encryption (Fernet). A comma-separated list: the first key encrypts, every key decrypts,
# so a new key can be put in front and the old one removed after `rotate_keys`.
FIELD_ENCRYPTION_KEY = fernet_keys("FIELD_ENCRYPTION_KEYS")
# Blind index for exact-match look-ups on encrypted document numbers: its own key, never the
# encryption key, truncated so that each index value matches several people (CipherSweet advice).
BLIND_INDEX_KEY = required_key("BLIND_INDEX_KEY")
BLIND_INDEX_BITS = int(os.environ.get("BLIND_INDEX_BITS", "32"))

# The audit log: events are spread over this many independent hash chains (by store), so that
# no lock is global to the operator. Raising it later is safe: each event keeps its chain.
AUDIT_CHAINS = int(os.environ.get("AUDIT_CHAINS", "64"))
# Ed25519 key that signs the audit checkpoints (32 bytes, URL-safe base64). Without it the log
# can be cut or re-hashed unseen, so production refuses to start; DEBUG runs without it only
# until `make run` generates one.
AUDIT_SIGNING_KEY = os.environ.get("AUDIT_SIGNING_KEY", "").strip() or (
    "" if DEBUG else required_key("AUDIT_SIGNING_KEY")
)


def _key_bytes(text: str) -> int:
    try:
        return len(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        return -1


if AUDIT_SIGNING_KEY and _key_bytes(AUDIT_SIGNING_KEY) != 32:
    raise StartupError(
        "AUDIT_SIGNING_KEY is not an Ed25519 key (32 url-safe base64-encoded bytes). simreg "
        f"will not start with it. Generate one with: {KEY_HELP['AUDIT_SIGNING_KEY']}"
    )
# Public keys (hex) of earlier signing keys, whose checkpoints still verify after a key change.
AUDIT_TRUSTED_PUBLIC_KEYS = env_list("AUDIT_TRUSTED_PUBLIC_KEYS")
# How often the job worker seals the audit log with a checkpoint.
AUDIT_SEAL_SECONDS = int(os.environ.get("AUDIT_SEAL_SECONDS", "60"))
# Audit exports made from the audit page are kept (encrypted) for this long, then deleted.
AUDIT_EXPORT_TTL_HOURS = int(os.environ.get("AUDIT_EXPORT_TTL_HOURS", "24"))

# Long work (audit verification and export from the web, purges, checkpoints) runs on one job
# runner: `manage.py run_worker`. The database backend needs no other server and works on SQLite
# and PostgreSQL; the Tasks API lets a distributed queue backend replace it.
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}

# Customer notifications (registrations.notifications): an outbox that the job worker sweeps
# every SIMREG_NOTIFY_SWEEP_SECONDS, retrying a failed message after 1, 2, 4 ... minutes (at
# most SIMREG_NOTIFY_MAX_BACKOFF_MINUTES) until SIMREG_NOTIFY_MAX_ATTEMPTS, then giving it up
# for the supervisors' list. E-mail goes through Django's e-mail backends (SMTP by default);
# SMS through SIMREG_SMS_BACKEND: the console (development) or a generic HTTP gateway.
NOTIFY_SWEEP_SECONDS = int(os.environ.get("SIMREG_NOTIFY_SWEEP_SECONDS", "10"))
NOTIFY_MAX_ATTEMPTS = int(os.environ.get("SIMREG_NOTIFY_MAX_ATTEMPTS", "8"))
NOTIFY_MAX_BACKOFF_MINUTES = int(os.environ.get("SIMREG_NOTIFY_MAX_BACKOFF_MINUTES", "60"))
NOTIFY_OPERATOR_NAME = os.environ.get("SIMREG_OPERATOR_NAME", "simreg").strip() or "simreg"
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "").strip() or (
    "registrations.notifications.backends.ConsoleEmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "simreg@localhost")
SMS_BACKENDS = {
    "console": "registrations.notifications.backends.ConsoleSmsBackend",
    "http": "registrations.notifications.backends.HttpSmsBackend",
}
SMS_BACKEND = os.environ.get("SIMREG_SMS_BACKEND", "console").strip() or "console"
SMS_BACKEND = SMS_BACKENDS.get(SMS_BACKEND, SMS_BACKEND)
SMS_GATEWAY_URL = os.environ.get("SIMREG_SMS_GATEWAY_URL", "").strip()
SMS_GATEWAY_TOKEN = os.environ.get("SIMREG_SMS_GATEWAY_TOKEN", "").strip()
SMS_GATEWAY_TIMEOUT = float(os.environ.get("SIMREG_SMS_GATEWAY_TIMEOUT", "5"))
if SMS_BACKEND.endswith(".HttpSmsBackend") and not SMS_GATEWAY_URL and not DEBUG:
    raise StartupError(
        "SIMREG_SMS_BACKEND is http but SIMREG_SMS_GATEWAY_URL is not set. simreg will not "
        "start without the address of the SMS gateway that sends the customers' messages."
    )

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    # createsuperuser and changepassword with the password rules and an audit event: before
    # django.contrib.auth, whose commands they replace.
    "registrations.account_commands",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "bootstrap",
    # The second factor: before "registrations", whose admin module takes the devices out of
    # the Django admin (a change there would bypass the audited services).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # The job runner (the Tasks API of Django 6, backported) and its database backend: before
    # "registrations", whose admin module takes the task results out of the Django admin.
    "django_tasks",
    "django_tasks_db",
    "registrations",
]

MIDDLEWARE = [
    # First: every request gets its id and its log line, redirects and static files included.
    "registrations.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before any view or middleware reads a body (CsrfViewMiddleware reads the form).
    "registrations.uploads.RequestLimitMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "registrations.middleware.IdleSignOutMiddleware",
    "registrations.middleware.SecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "registrations.middleware.NoStoreMiddleware",
    "registrations.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "simreg.urls"
WSGI_APPLICATION = "simreg.wsgi.application"
ASGI_APPLICATION = "simreg.asgi.application"

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
                "registrations.context_processors.navigation",
                "registrations.context_processors.session_timing",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "600")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # BEGIN IMMEDIATE: a transaction takes the write lock up front, so appends to the audit
    # chain are serialised and never fail half-way with "database is locked".
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# Two roles on PostgreSQL, so that the app cannot rewrite the audit log: with
# MIGRATION_DATABASE_URL set, `migrate` connects with it (the owner of the tables) and
# DATABASE_URL is the app's role, which owns nothing and may only append to the audit tables.
# `migrate` grants DATABASE_APP_ROLE its privileges (registrations.db_roles).
MIGRATION_DATABASE_URL = os.environ.get("MIGRATION_DATABASE_URL", "")
DATABASE_APP_ROLE = os.environ.get("DATABASE_APP_ROLE", "") or (
    DATABASES["default"].get("USER", "") if MIGRATION_DATABASE_URL else ""
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "registrations.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in attempts are counted before the password is checked (registrations.services.sign_in):
# at most SIGN_IN_MAX_FAILURES a window per user name and client address, and per user name from
# addresses where it did not sign in lately, whose window doubles each time it is used up, up to
# SIGN_IN_LOCK_MAX_HOURS. Never per address alone: a whole store shares one behind its router.
SIGN_IN_MAX_FAILURES = int(os.environ.get("SIGN_IN_MAX_FAILURES", "5"))
SIGN_IN_LOCK_MINUTES = int(os.environ.get("SIGN_IN_LOCK_MINUTES", "15"))
SIGN_IN_LOCK_MAX_HOURS = int(os.environ.get("SIGN_IN_LOCK_MAX_HOURS", "24"))
SIGN_IN_TRUSTED_DAYS = int(os.environ.get("SIGN_IN_TRUSTED_DAYS", "30"))
# Supervisors, compliance admins, disclosure officers and superusers pass a second factor
# (an authenticator app, TOTP) after the password; counter staff too when this is on.
SECOND_FACTOR_FOR_COUNTER = env_bool("SECOND_FACTOR_FOR_COUNTER", False)
OTP_TOTP_ISSUER = "simreg"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hant", _("Traditional Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["simreg.formats"]
TIME_ZONE = "Asia/Hong_Kong"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Identity-document copies and audit exports, encrypted by the app before they are written: the
# "private" storage (registrations.storage), which no URL serves. A local folder by default; with
# SIMREG_DOCUMENT_STORAGE=s3, a bucket of S3-compatible object storage, which every app server
# shares. The bucket's credentials come from the environment (AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY, or the machine's role) and never enter the settings.
PRIVATE_STORAGE_ROOT = Path(os.environ.get("SIMREG_PRIVATE_STORAGE", BASE_DIR / "var" / "private"))
MEDIA_ROOT = PRIVATE_STORAGE_ROOT
DOCUMENT_STORAGE = os.environ.get("SIMREG_DOCUMENT_STORAGE", "local").strip().lower() or "local"
if DOCUMENT_STORAGE == "local":
    PRIVATE_STORAGE = {"BACKEND": "registrations.storage.PrivateFileSystemStorage"}
elif DOCUMENT_STORAGE == "s3":
    if not os.environ.get("AWS_STORAGE_BUCKET_NAME", "").strip():
        raise StartupError(
            "SIMREG_DOCUMENT_STORAGE is s3 but AWS_STORAGE_BUCKET_NAME is not set. simreg will "
            "not start without the bucket that keeps the document copies."
        )
    PRIVATE_STORAGE = {
        "BACKEND": "registrations.storage.PrivateS3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["AWS_STORAGE_BUCKET_NAME"].strip(),
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            # A prefix inside the bucket, for a bucket shared with other data.
            "location": os.environ.get("AWS_LOCATION", "").strip("/"),
            "addressing_style": os.environ.get("AWS_S3_ADDRESSING_STYLE") or None,
        },
    }
else:
    raise StartupError(
        f"SIMREG_DOCUMENT_STORAGE is {DOCUMENT_STORAGE!r}: it must be local (a folder, the "
        "default) or s3 (S3-compatible object storage)."
    )
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "private": PRIVATE_STORAGE,
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Uploads stay in memory (never a plaintext temp file) and are encrypted before they touch disk.
DOCUMENT_MAX_BYTES = int(os.environ.get("SIMREG_DOCUMENT_MAX_BYTES", str(5 * 1024 * 1024)))
FILE_UPLOAD_HANDLERS = ["registrations.uploads.BoundedMemoryUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = DOCUMENT_MAX_BYTES + 1024 * 1024
# What the storage API writes (audit exports, encrypted) is readable by the app's user only.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# No form takes more than two files; each is held in memory up to DOCUMENT_MAX_BYTES.
DATA_UPLOAD_MAX_NUMBER_FILES = 4
# Bodies are refused by their Content-Length before a byte is read
# (registrations.uploads.RequestLimitMiddleware): a signed-in user's may hold the files above, and
# a file too large by a few megabytes still gets its message next to the field; a body from
# someone not signed in holds a short form and no file at all.
REQUEST_MAX_BYTES = int(
    os.environ.get(
        "SIMREG_REQUEST_MAX_BYTES",
        str(DATA_UPLOAD_MAX_NUMBER_FILES * DOCUMENT_MAX_BYTES + DATA_UPLOAD_MAX_MEMORY_SIZE),
    )
)
ANONYMOUS_REQUEST_MAX_BYTES = int(
    os.environ.get("SIMREG_ANONYMOUS_REQUEST_MAX_BYTES", str(64 * 1024))
)

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Jurisdiction profile: the figures of registrations/policy.py.
SIMREG_POLICY = os.environ.get("SIMREG_POLICY", "hk")

# App servers share nothing but the database and the private storage, so that any number can
# run behind a load balancer: sessions, the sign-in throttle, the second factor's throttle (on
# its device row), the job queue and every lock live in the database. Django's cache is not used
# by simreg: a dummy cache, so that nothing can come to rely on one server's memory.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}

# Sessions hold no identity data; they end with the browser and after a working shift.
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(8 * 3600)))
# A counter left unattended signs itself out; 0 turns this off. SESSION_COOKIE_AGE still ends
# every session that long after sign-in, however active.
SESSION_IDLE_MINUTES = int(os.environ.get("SESSION_IDLE_MINUTES", "15"))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
# Behind the TLS proxy, the client's address for the audit log is the one the proxy appended
# to X-Forwarded-For (the last entry); anything before it was sent by the client.
CLIENT_IP_FROM_FORWARDED_FOR = env_bool("DJANGO_BEHIND_TLS_PROXY", False)
if CLIENT_IP_FROM_FORWARDED_FOR:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Logs: one JSON object a line by default in production (simreg.logs: request id, method, path
# without query string, status, duration, user id; nothing else of a request), plain text with
# DEBUG. The request log of registrations.middleware.RequestLogMiddleware is written in JSON
# only: in development, runserver logs each request itself.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "").strip().lower() or ("text" if DEBUG else "json")
if LOG_FORMAT not in {"json", "text"}:
    raise StartupError(f"LOG_FORMAT is {LOG_FORMAT!r}: it must be json or text.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "simreg.logs.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler"}
        | ({"formatter": "json"} if LOG_FORMAT == "json" else {})
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Request logs carry URLs only; identity data never travels in a URL.
        "django.db.backends": {"level": "INFO", "propagate": True},
        "simreg.request": {"level": "INFO" if LOG_FORMAT == "json" else "WARNING"},
    },
}
# `/metrics` (registrations.metrics_views) answers a scraper sending this bearer token, and
# nobody else; unset, the page does not exist.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "").strip()
