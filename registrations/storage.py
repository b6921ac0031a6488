"""Private storage: where document copies and audit exports are kept, encrypted by the app.

One storage alias, "private" in STORAGES: a local folder by default (PRIVATE_STORAGE_ROOT), or
a bucket of S3-compatible object storage (SIMREG_DOCUMENT_STORAGE=s3). Everything that reads,
writes, lists or deletes such a file goes through `private_storage()`, so both behave alike:
what is written is ciphertext only, under a random name, and neither has a URL (the app serves
a copy itself, after its checks and an audit event).
"""

from __future__ import annotations

import datetime
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils.deconstruct import deconstructible
from django.utils.functional import cached_property
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

ALIAS = "private"

# What a storage raises when it cannot be reached or refuses a request: a full disk or a
# missing folder, a bucket that does not exist, an endpoint that does not answer.
STORAGE_ERRORS: tuple[type[BaseException], ...] = (OSError, BotoCoreError, ClientError, Boto3Error)


class StorageUnavailable(RuntimeError):
    """The private storage cannot be reached or refused the request (nothing was written)."""


def private_storage() -> Storage:
    return storages[ALIAS]


def unavailable(exc: BaseException, doing: str) -> StorageUnavailable:
    """A StorageUnavailable naming what failed: the kind of error, and the server's error code
    and message; never the exception's own text (it can hold a local path or a request's URL)."""
    what = type(exc).__name__
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        what = f"{what} {error.get('Code', '')} {error.get('Message', '')}".strip()
    return StorageUnavailable(f"{what} while {doing}.")


@deconstructible(path="registrations.storage.PrivateFileSystemStorage")
class PrivateFileSystemStorage(FileSystemStorage):
    """A local folder (PRIVATE_STORAGE_ROOT) readable by the app's user only, with no URL.

    A file is written under a temporary name in its folder and renamed into place, so a reader
    never sees half a file, and a write under an existing name (a key rotation) replaces it
    whole or not at all.
    """

    def __init__(self, location=None, **kwargs) -> None:
        kwargs.setdefault("file_permissions_mode", 0o600)
        kwargs.setdefault("directory_permissions_mode", 0o700)
        kwargs["allow_overwrite"] = True
        super().__init__(location=location, **kwargs)

    @cached_property
    def base_location(self):
        return self._value_or_setting(self._location, settings.PRIVATE_STORAGE_ROOT)

    def _clear_cached_properties(self, setting, **kwargs):
        super()._clear_cached_properties(setting, **kwargs)
        if setting == "PRIVATE_STORAGE_ROOT":
            self.__dict__.pop("base_location", None)
            self.__dict__.pop("location", None)

    def _save(self, name, content):
        full_path = Path(self.path(name))
        folder = full_path.parent
        folder.mkdir(mode=self.directory_permissions_mode, parents=True, exist_ok=True)
        # mkstemp creates the file readable by its owner only (0600).
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".partial-")
        try:
            with os.fdopen(descriptor, "wb") as file:
                for chunk in content.chunks():
                    file.write(chunk)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, self.file_permissions_mode)
            os.replace(temporary, full_path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return os.path.relpath(full_path, self.location).replace("\\", "/")

    def url(self, name):
        raise ValueError("Private storage has no URL: the app serves its files itself.")

    def check_reachable(self) -> None:
        """Raises StorageUnavailable unless the folder exists (or can be made) and is writable."""
        folder = Path(self.location)
        try:
            folder.mkdir(mode=self.directory_permissions_mode, parents=True, exist_ok=True)
        except OSError as exc:
            raise unavailable(exc, "making its folder") from exc
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StorageUnavailable("Its folder is not writable.")

    def files_with_times(self, folder: str) -> Iterator[tuple[str, datetime.datetime]]:
        """(name, last modified) of each file directly in `folder`, one stat each."""
        path = Path(self.path(folder))
        if not path.is_dir():
            return
        for entry in os.scandir(path):
            if entry.is_file(follow_symlinks=False):
                modified = entry.stat(follow_symlinks=False).st_mtime
                yield entry.name, datetime.datetime.fromtimestamp(modified, tz=datetime.UTC)


@deconstructible(path="registrations.storage.PrivateS3Storage")
class PrivateS3Storage(S3Storage):
    """A bucket of S3-compatible object storage, with no URL.

    Objects get no ACL of their own (the bucket's default: private to its owner); names are
    overwritten in place (a key rotation) without asking first whether they exist. Nothing is
    spooled to a local file: uploads are read from memory (or, for an export, from its stream),
    reads of a copy are held in memory (at most SIMREG_DOCUMENT_MAX_BYTES of ciphertext).
    """

    # Seconds to wait for the endpoint, and attempts, for the app's reads and writes; the health
    # check asks once with shorter waits.
    CONNECT_TIMEOUT = 5
    READ_TIMEOUT = 60
    ATTEMPTS = 3
    PROBE_TIMEOUT = 3

    def __init__(self, **options) -> None:
        options.setdefault("file_overwrite", True)
        options.setdefault("default_acl", None)
        options.setdefault("querystring_auth", True)
        # Uploads in the calling thread: an audit export's rows are read from the database as
        # its file is sent, on the caller's connection and inside its transaction.
        options.setdefault("transfer_config", TransferConfig(use_threads=False))
        super().__init__(**options)
        self.client_config = self.client_config.merge(
            Config(
                connect_timeout=self.CONNECT_TIMEOUT,
                read_timeout=self.READ_TIMEOUT,
                retries={"max_attempts": self.ATTEMPTS, "mode": "standard"},
            )
        )

    def url(self, name, parameters=None, expire=None, http_method=None):
        raise ValueError("Private storage has no URL: the app serves its files itself.")

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_probe", None)
        return state

    @property
    def _probe_client(self):
        # One client per process: a client made before gunicorn forks its workers would share
        # its open connections with each of them.
        pid = os.getpid()
        probe = getattr(self, "_probe", None)
        if probe is None or probe[0] != pid:
            self._probe = probe = (pid, self._new_probe_client())
        return probe[1]

    def _new_probe_client(self):
        config = self.client_config.merge(
            Config(
                connect_timeout=self.PROBE_TIMEOUT,
                read_timeout=self.PROBE_TIMEOUT,
                retries={"max_attempts": 1, "mode": "standard"},
            )
        )
        return self._create_session().client(
            "s3",
            region_name=self.region_name,
            use_ssl=self.use_ssl,
            endpoint_url=self.endpoint_url,
            config=config,
            verify=self.verify,
        )

    def check_reachable(self) -> None:
        """Raises StorageUnavailable unless the bucket answers (one HEAD request)."""
        try:
            self._probe_client.head_bucket(Bucket=self.bucket_name)
        except STORAGE_ERRORS as exc:
            raise unavailable(exc, f"looking for the bucket {self.bucket_name}") from exc

    def files_with_times(self, folder: str) -> Iterator[tuple[str, datetime.datetime]]:
        """(name, last modified) of each object directly in `folder`: the listing gives both,
        a thousand a request, without asking for each object."""
        prefix = self._normalize_name(clean_name(folder)).rstrip("/") + "/"
        paginator = self.connection.meta.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket_name, Prefix=prefix, Delimiter="/"):
            for entry in page.get("Contents", ()):
                yield entry["Key"][len(prefix) :], entry["LastModified"]

    def open_stream(self, name: str) -> BinaryIO:
        """The object's body as a stream read as it comes (the storage's own open() would
        download all of it first)."""
        key = self._normalize_name(clean_name(name))
        try:
            return self.bucket.Object(key).get()["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise FileNotFoundError(name) from None
            raise


def check_reachable() -> None:
    """Raises StorageUnavailable when the private storage cannot be used now."""
    storage = private_storage()
    try:
        probe = storage.check_reachable
    except AttributeError:
        try:
            storage.listdir("")
        except STORAGE_ERRORS as exc:
            raise unavailable(exc, "listing its files") from exc
    else:
        probe()


def storage_problem() -> str | None:
    """What is wrong with the private storage, or None: for the health check and start-up."""
    try:
        check_reachable()
    except StorageUnavailable as exc:
        return str(exc)
    return None


def files_with_times(folder: str) -> Iterator[tuple[str, datetime.datetime]]:
    """(name, last modified) of each file directly in `folder` of the private storage."""
    storage = private_storage()
    if hasattr(storage, "files_with_times"):
        yield from storage.files_with_times(folder)
        return
    try:
        _folders, names = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in names:
        yield name, storage.get_modified_time(f"{folder}/{name}")


def open_stream(name: str) -> BinaryIO:
    """A private file opened for reading chunk by chunk; FileNotFoundError when it is gone."""
    storage = private_storage()
    if hasattr(storage, "open_stream"):
        return storage.open_stream(name)
    return storage.open(name, "rb")
