"""The private storage as tests see it: the same calls on a folder and on an S3 bucket.

`make test-s3` runs the document tests with SIMREG_TEST_S3_ENDPOINT set to an S3-compatible
server on loopback (moto's server mode, started by .ci/s3.sh): tests/settings.py then points the
"private" storage at a bucket made for the run, and each test that asks for `private_storage`
works under a prefix of its own. Tests talk to that server over HTTP, as the app does.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import boto3
from django.conf import settings
from django.core.files.base import ContentFile

from registrations.documents import FOLDER, storage_name
from registrations.storage import private_storage


def s3_mode() -> bool:
    return bool(settings.S3_TEST_ENDPOINT)


def s3_client():
    return boto3.client(
        "s3",
        endpoint_url=settings.S3_TEST_ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )


def s3_bucket_create() -> str:
    bucket = settings.S3_TEST_BUCKET
    s3_client().create_bucket(Bucket=bucket)
    return bucket


def s3_bucket_remove(bucket: str) -> None:
    client = s3_client()
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        keys = [{"Key": entry["Key"]} for entry in page.get("Contents", ())]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    client.delete_bucket(Bucket=bucket)


def s3_prefix_for_test(settings_fixture) -> str:
    """Point the private storage at a prefix of its own in the run's bucket, for one test."""
    prefix = f"test-{uuid.uuid4().hex}"
    private = settings.STORAGES["private"]
    settings_fixture.STORAGES = {
        **settings.STORAGES,
        "private": {**private, "OPTIONS": {**private["OPTIONS"], "location": prefix}},
    }
    return prefix


def s3_key(name: str) -> str:
    """The object key of a private storage name, for requests made beside the app."""
    location = private_storage().location
    return f"{location}/{name}" if location else name


def stored_names(folder: str = FOLDER) -> set[str]:
    """The names of the files in a folder of the private storage."""
    try:
        _folders, names = private_storage().listdir(folder)
    except FileNotFoundError:
        return set()
    return set(names)


def stored_bytes(stored_name: str) -> bytes:
    """What the private storage holds for a document copy, as stored (ciphertext)."""
    with private_storage().open(storage_name(stored_name), "rb") as file:
        return file.read()


def all_stored_bytes() -> dict[str, bytes]:
    """Every file under the private storage (this test's folder or prefix), by name."""
    storage = private_storage()
    found: dict[str, bytes] = {}

    def walk(folder: str) -> None:
        try:
            folders, names = storage.listdir(folder)
        except FileNotFoundError:
            return
        for name in names:
            path = f"{folder}/{name}" if folder else name
            with storage.open(path, "rb") as file:
                found[path] = file.read()
        for sub in folders:
            walk(f"{folder}/{sub}" if folder else sub)

    walk("")
    return found


def put_stored(stored_name: str, data: bytes) -> None:
    """Write a file of the copies' folder beside the app (an orphan, or damage)."""
    private_storage().save(storage_name(stored_name), ContentFile(data))


def remove_stored(stored_name: str) -> None:
    private_storage().delete(storage_name(stored_name))


# Storages that cannot be used ---------------------------------------------------------------

# A folder that cannot be made (its parent is a file), an endpoint where nothing answers, and
# (with a server) a bucket that does not exist.
BROKEN = ("folder", "no_answer", "no_bucket")


def closed_port() -> int:
    """A loopback port where nothing listens (taken from the system, then let go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def break_storage(settings_fixture, tmp_path: Path, how: str) -> None:
    """Point the private storage at one that cannot be used, `how` as in BROKEN."""
    if how == "folder":
        blocker = tmp_path / "not-a-folder"
        blocker.write_bytes(b"")
        settings_fixture.PRIVATE_STORAGE_ROOT = blocker / "private"
        private = {"BACKEND": "registrations.storage.PrivateFileSystemStorage"}
    else:
        endpoint = (
            settings.S3_TEST_ENDPOINT if how == "no_bucket" else f"http://127.0.0.1:{closed_port()}"
        )
        private = {
            "BACKEND": "registrations.storage.PrivateS3Storage",
            "OPTIONS": {
                "bucket_name": f"simreg-missing-{uuid.uuid4().hex[:12]}",
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "access_key": "simreg-test",
                "secret_key": "simreg-test-secret",
            },
        }
    settings_fixture.STORAGES = {**settings.STORAGES, "private": private}
