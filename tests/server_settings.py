"""Settings of the app servers that tests start as processes of their own
(tests/test_two_servers.py): the production settings, read from the environment the test gives
them, with static files found in the apps instead of collected first."""

from simreg.settings import *  # noqa: F403
from simreg.settings import STORAGES

STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# The users of the test are made with the test settings' (fast) hasher.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
