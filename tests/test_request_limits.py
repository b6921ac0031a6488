"""Request bodies are bounded before anyone signs in: no file and no large body is read for
someone not signed in, and no body beyond REQUEST_MAX_BYTES for anyone."""

import io
import socket
import socketserver
import threading
import time
from pathlib import Path
from wsgiref import simple_server

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIHandler
from django.test import RequestFactory

from registrations import uploads
from tests.factories import make_user

PASSWORD = "correct horse battery staple"


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise AssertionError("the body was read")


def refused_unread(*, length: int, content_type: str, user=None):
    """What the middleware answers to a body of `length` bytes, which it must not read."""
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().generic(
        "POST", "/login/", content_type=content_type, CONTENT_LENGTH=str(length)
    )
    request.META["wsgi.input"] = Unreadable()
    request._stream = Unreadable()
    request.user = user or AnonymousUser()
    middleware = uploads.RequestLimitMiddleware(lambda request: pytest.fail("passed on"))
    return middleware(request)


def test_a_file_sent_to_the_sign_in_page_is_refused_clearly_and_never_read(
    client, staff, monkeypatch
):
    received = []
    monkeypatch.setattr(
        uploads.BoundedMemoryUploadHandler,
        "receive_data_chunk",
        lambda self, raw_data, start: received.append(len(raw_data)),
    )
    response = client.post(
        "/login/",
        {
            "username": "counter",
            "password": PASSWORD,
            "scan": SimpleUploadedFile("scan.png", b"\x89PNG" + b"x" * 10_000, "image/png"),
        },
    )
    assert response.status_code == 400
    assert "This page takes no files." in response.content.decode()
    assert received == []
    assert "_auth_user_id" not in client.session


def test_the_sign_in_form_sent_as_multipart_without_a_file_still_signs_in(client, staff):
    # The test client, like some browsers' scripts, sends forms as multipart/form-data.
    response = client.post("/login/", {"username": "counter", "password": PASSWORD})
    assert response.status_code == 302


def test_a_large_body_from_someone_not_signed_in_is_refused_unread(settings):
    response = refused_unread(
        length=settings.ANONYMOUS_REQUEST_MAX_BYTES + 1,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert "was not read" in response.content.decode()
    response = refused_unread(length=10**12, content_type="multipart/form-data; boundary=x")
    assert response.status_code == 413


def test_a_body_beyond_the_limit_is_refused_unread_even_signed_in(db, settings):
    user = make_user(None)
    response = refused_unread(
        length=settings.REQUEST_MAX_BYTES + 1,
        content_type="multipart/form-data; boundary=x",
        user=user,
    )
    assert response.status_code == 413


def test_the_limits_leave_room_for_the_largest_form_of_the_counter(settings):
    """The materials step takes two files of DOCUMENT_MAX_BYTES; one too large by a few
    megabytes still gets its message next to the field rather than a refusal."""
    assert settings.REQUEST_MAX_BYTES >= 2 * settings.DOCUMENT_MAX_BYTES + (
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    )
    assert settings.ANONYMOUS_REQUEST_MAX_BYTES < settings.DATA_UPLOAD_MAX_MEMORY_SIZE


# Over real HTTP: many large bodies at once ------------------------------------------------------

CHUNK = b"x" * (64 * 1024)


class _Body:
    """The body a server hands the app: bounded by Content-Length, and what the app leaves
    unread is read afterwards in small pieces and dropped, as production servers do, so that
    the client gets the answer and the memory measured is the app's."""

    def __init__(self, raw, length: int) -> None:
        self.raw, self.left = raw, length

    def read(self, size: int = -1) -> bytes:
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.raw.read(size) if size else b""
        self.left -= len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.raw.readline(size) if size else b""
        self.left -= len(data)
        return data

    def drain(self) -> None:
        while self.read(len(CHUNK)):
            pass


class _Handler(simple_server.WSGIRequestHandler):
    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.parse_request():
            return
        environ = self.get_environ()
        body = _Body(self.rfile, int(environ.get("CONTENT_LENGTH") or 0))
        handler = simple_server.ServerHandler(
            body, self.wfile, self.get_stderr(), environ, multithread=True
        )
        handler.request_handler = self
        handler.run(self.server.get_app())
        body.drain()

    def log_message(self, *args) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _post_files(port: int, *, files: int, file_bytes: int) -> int:
    """A multipart POST of `files` files to /login/, streamed from one small chunk; the status."""
    boundary = "simregboundary"
    parts_head = [
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="scan{n}"; '
            f'filename="scan{n}.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        for n in range(files)
    ]
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = sum(len(head) + file_bytes + 2 for head in parts_head) - 2 + len(tail)
    # With a CSRF cookie, as anyone gets from the sign-in page: the CSRF check then reads the
    # form (for its token) before it can refuse anything.
    head = (
        f"POST /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Cookie: csrftoken={'a' * 32}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head)
        for n, part in enumerate(parts_head):
            sock.sendall((b"\r\n" if n else b"") + part)
            left = file_bytes
            while left:
                piece = CHUNK[: min(left, len(CHUNK))]
                sock.sendall(piece)
                left -= len(piece)
        sock.sendall(tail)
        reply = sock.makefile("rb").readline()
    return int(reply.split()[1])


@pytest.mark.django_db(transaction=True)
def test_twenty_large_uploads_at_once_before_signing_in_leave_the_memory_flat(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    server = _Server(("127.0.0.1", 0), _Handler)
    server.set_app(WSGIHandler())
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    port = server.server_address[1]

    peak, baseline, sampling = [0], _rss_bytes(), threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    statuses: list = []

    def send() -> None:
        try:
            # Three files each under DOCUMENT_MAX_BYTES: all of it would be kept in memory.
            statuses.append(_post_files(port, files=3, file_bytes=4 * 1024 * 1024))
        except Exception as exc:  # reported by the assertion on the statuses
            statuses.append(exc)

    senders = [threading.Thread(target=send) for _ in range(20)]
    started = time.monotonic()
    try:
        sampler.start()
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(timeout=120)
    finally:
        sampling.set()
        sampler.join()
        server.shutdown()
        server.server_close()
    assert time.monotonic() - started < 120
    assert statuses == [413] * 20
    assert peak[0] - baseline < 50 * 1024 * 1024, f"RSS grew by {(peak[0] - baseline) >> 20} MiB"
