"""Uploads stay in memory and are bounded: Django never spools a plaintext copy to disk, and a
request body too large for who sends it is refused before a byte of it is read."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _


class BoundedMemoryUploadHandler(FileUploadHandler):
    """Keep each file in memory up to DOCUMENT_MAX_BYTES; drop the rest but count it.

    A too-large file still arrives, truncated, with its real size, so the form can say
    "too large" next to the field while keeping everything else that was entered.
    """

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.buffer = BytesIO()
        self.total = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.total += len(raw_data)
        if self.total <= settings.DOCUMENT_MAX_BYTES:
            self.buffer.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> InMemoryUploadedFile:
        self.buffer.seek(0)
        return InMemoryUploadedFile(
            file=self.buffer,
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=self.total,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )


class FileNotAccepted(SuspiciousOperation):
    """A file sent to a page that takes none (anything before signing in)."""


class NoFileUploadHandler(FileUploadHandler):
    """The handler of a request from someone not signed in: no page of theirs takes a file, so
    the first file in the body stops the parse before any of its content is read."""

    def new_file(self, *args, **kwargs) -> None:
        raise FileNotAccepted("A file sent before signing in.")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        return None

    def file_complete(self, file_size: int) -> None:
        return None


def _content_length(request: HttpRequest) -> int:
    # Django reads no body at all without a valid Content-Length (a chunked request arrives
    # empty), so the header alone bounds what is read.
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _refusal(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class RequestLimitMiddleware:
    """Bound what a request may make the server read and hold, before anything reads it.

    Django's own limits (DATA_UPLOAD_MAX_MEMORY_SIZE, DATA_UPLOAD_MAX_NUMBER_FILES) apply while
    the body is parsed, and the upload handler keeps at most DOCUMENT_MAX_BYTES of each file;
    but CsrfViewMiddleware parses the form of any POST, signed in or not, before any view says
    who may send it. So here, by Content-Length alone: no body larger than REQUEST_MAX_BYTES,
    and none larger than ANONYMOUS_REQUEST_MAX_BYTES from someone not signed in, whose form is
    then read at once with a handler that refuses any file.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = _content_length(request)
        multipart = request.META.get("CONTENT_TYPE", "").lower().startswith("multipart/")
        if length > settings.REQUEST_MAX_BYTES:
            return self.too_large(settings.REQUEST_MAX_BYTES)
        # Only then is the session read: small forms cost no query here.
        if (multipart or length > settings.ANONYMOUS_REQUEST_MAX_BYTES) and not (
            request.user.is_authenticated
        ):
            if length > settings.ANONYMOUS_REQUEST_MAX_BYTES:
                return self.too_large(settings.ANONYMOUS_REQUEST_MAX_BYTES)
            request.upload_handlers = [NoFileUploadHandler(request)]
            try:
                request.POST  # noqa: B018 (parsed here, where a file can be answered clearly)
            except FileNotAccepted:
                return _refusal(_("This page takes no files. Sign in before sending any."), 400)
        return self.get_response(request)

    def too_large(self, limit: int) -> HttpResponse:
        return _refusal(
            _(
                "What was sent is larger than %(limit)s and was not read. Go back and send "
                "smaller files."
            )
            % {"limit": filesizeformat(limit)},
            413,
        )
