"""Encryption at rest and the blind index, in one place.

django-encrypted-model-fields 0.6.5 builds its Fernet keys once at import, returns the stored
ciphertext silently when decryption fails, and encrypts such a value a second time when it is
saved back. The fields here keep the library's column format but use keys read from settings at
call time, raise on a value they cannot decrypt, and refuse to encrypt a value that already is a
Fernet token.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import struct
from collections.abc import Callable, Iterable, Iterator

import encrypted_model_fields.fields as emf
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from registrations.validators import normalise_document_number

FERNET_VERSION = 0x80
BLIND_INDEX_INFO = b"simreg blind index: document type and number, v1"
PSEUDONYM_INFO = b"simreg pseudonym: user names typed at sign-in, v1"
SIGN_IN_THROTTLE_INFO = b"simreg sign-in throttle: user names and client addresses, v1"


class DecryptionError(RuntimeError):
    """Stored ciphertext does not decrypt with any configured key."""


class DoubleEncryptionError(ValueError):
    """A value about to be encrypted is already a Fernet token."""


def _configured_keys() -> list[str]:
    keys = settings.FIELD_ENCRYPTION_KEY
    if isinstance(keys, str):
        keys = [keys]
    return [k for k in keys if k]


@functools.cache
def crypter() -> MultiFernet:
    keys = _configured_keys()
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: at least one key is needed.")
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, binascii.Error) as exc:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key number {position} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes)."
            ) from exc
    return MultiFernet(fernets)


@functools.cache
def _primary_only() -> MultiFernet:
    return MultiFernet([Fernet(_configured_keys()[0])])


@functools.cache
def _blind_index_key() -> bytes:
    secret = settings.BLIND_INDEX_KEY.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=BLIND_INDEX_INFO).derive(
        secret
    )


@functools.cache
def _pseudonym_key() -> bytes:
    secret = settings.BLIND_INDEX_KEY.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PSEUDONYM_INFO).derive(secret)


def pseudonym(value: str) -> str:
    """A stable stand-in for text that must not be stored as typed (e.g. an unknown user name,
    which is often a password typed in the wrong box)."""
    digest = hmac.new(_pseudonym_key(), value.encode(), hashlib.sha256).hexdigest()
    return f"unknown-{digest[:16]}"


@functools.cache
def _sign_in_throttle_key() -> bytes:
    secret = settings.BLIND_INDEX_KEY.encode()
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SIGN_IN_THROTTLE_INFO)
    return hkdf.derive(secret)


def sign_in_throttle_key(*parts: str) -> str:
    """The key of a sign-in counter: a keyed hash, so that the counters never hold a typed user
    name (often a password in the wrong box) or a client address as such."""
    message = "\x00".join(parts).encode()
    return hmac.new(_sign_in_throttle_key(), message, hashlib.sha256).hexdigest()


@receiver(setting_changed)
def _reset_keys(*, setting: str, **kwargs: object) -> None:
    if setting in {"FIELD_ENCRYPTION_KEY", "BLIND_INDEX_KEY"}:
        crypter.cache_clear()
        _primary_only.cache_clear()
        _blind_index_key.cache_clear()
        _pseudonym_key.cache_clear()
        _sign_in_throttle_key.cache_clear()


def looks_like_token(value: str) -> bool:
    """True for anything shaped like a Fernet token, whatever key made it."""
    if not value.startswith("gAAAAA") or len(value) < 100:
        return False
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    return raw[0] == FERNET_VERSION and (len(raw) - 57) % 16 == 0


def _is_our_ciphertext(value: str) -> bool:
    if not looks_like_token(value):
        return False
    try:
        crypter().decrypt(value.encode("ascii"))
    except InvalidToken:
        return False
    return True


def encrypt_text(plaintext: str) -> str:
    # Text typed to look like a token is just text; only our own ciphertext is refused, since
    # it can only arrive here by a bug (a value read back without being decrypted).
    if _is_our_ciphertext(plaintext):
        raise DoubleEncryptionError("Refusing to encrypt a value that is already encrypted.")
    return crypter().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt_text(token: str, *, where: str = "a stored value") -> str:
    try:
        return crypter().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeEncodeError) as exc:
        raise DecryptionError(
            f"Cannot decrypt {where} with the configured FIELD_ENCRYPTION_KEYS: "
            "the key is wrong or missing, or the value is not ciphertext."
        ) from exc


def encrypt_bytes(data: bytes) -> bytes:
    return crypter().encrypt(data)


def decrypt_bytes(token: bytes, *, where: str = "a stored file") -> bytes:
    try:
        return crypter().decrypt(token)
    except InvalidToken as exc:
        raise DecryptionError(
            f"Cannot decrypt {where} with the configured FIELD_ENCRYPTION_KEYS."
        ) from exc


# A stream too large to hold in memory (an audit export) is encrypted chunk by chunk: a magic
# line, then frames of a 4-byte big-endian length and a Fernet token. Each token's plaintext
# starts with the stream's id, the frame's number and whether it is the last frame, so that a
# frame moved, dropped, repeated or taken from another stream, or a stream cut short, does not
# decrypt as a whole stream (Fernet alone authenticates each token, not their order).
FRAMES_MAGIC = b"simreg-frames-v1\n"
FRAME_LENGTH = struct.Struct(">I")
FRAME_PREFIX = struct.Struct(">QQ?")
# Far above a chunk's token (64 KiB of plaintext makes about 88 KiB): a length beyond this is
# damage, not a frame, and is not read into memory.
MAX_FRAME_BYTES = 16 * 1024 * 1024


def _frame(data: bytes, *, stream_id: int, number: int, last: bool) -> bytes:
    token = crypter().encrypt(FRAME_PREFIX.pack(stream_id, number, last) + data)
    return FRAME_LENGTH.pack(len(token)) + token


def encrypt_frames(chunks: Iterable[bytes], *, stream_id: int) -> Iterator[bytes]:
    """The encrypted stream of `chunks`, one frame per chunk, produced as it is read."""
    yield FRAMES_MAGIC
    number = 0
    held: bytes | None = None
    for chunk in chunks:
        # One chunk is held back: only the next one tells whether it is the last.
        if held is not None:
            yield _frame(held, stream_id=stream_id, number=number, last=False)
            number += 1
        held = chunk
    yield _frame(held or b"", stream_id=stream_id, number=number, last=True)


def _read_exactly(read: Callable[[int], bytes], size: int) -> bytes:
    parts, left = [], size
    while left:
        part = read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def decrypt_frames(
    read: Callable[[int], bytes], *, stream_id: int, where: str = "an encrypted file"
) -> Iterator[bytes]:
    """The plaintext chunks of a stream written by `encrypt_frames`, decrypted one at a time.

    Raises DecryptionError at the first frame that is damaged, out of place or under a key no
    longer configured, and when the stream ends before its last frame.
    """
    if _read_exactly(read, len(FRAMES_MAGIC)) != FRAMES_MAGIC:
        raise DecryptionError(f"{where} is not an encrypted stream.")
    number = 0
    while True:
        header = _read_exactly(read, FRAME_LENGTH.size)
        if len(header) != FRAME_LENGTH.size:
            raise DecryptionError(f"{where} ends before its last frame.")
        (length,) = FRAME_LENGTH.unpack(header)
        if length > MAX_FRAME_BYTES:
            raise DecryptionError(f"{where} is damaged (frame {number}).")
        token = _read_exactly(read, length)
        plaintext = decrypt_bytes(token, where=where) if len(token) == length else b""
        if len(plaintext) < FRAME_PREFIX.size:
            raise DecryptionError(f"{where} is damaged (frame {number}).")
        found_id, found_number, last = FRAME_PREFIX.unpack_from(plaintext)
        if found_id != stream_id or found_number != number:
            raise DecryptionError(f"{where} has a frame out of place (frame {number}).")
        yield plaintext[FRAME_PREFIX.size :]
        if last:
            break
        number += 1
    if read(1):
        raise DecryptionError(f"{where} goes on after its last frame.")


def rotate_token(token: str) -> str:
    """Re-encrypt under the first key (MultiFernet.rotate)."""
    return crypter().rotate(token.encode("ascii")).decode("ascii")


def decrypts_with_primary_key(token: str) -> bool:
    try:
        _primary_only().decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True


def blind_index(document_type: str, document_number: str, *, bits: int | None = None) -> str:
    """Keyed HMAC-SHA256 of the normalised document type and number, truncated.

    Truncation makes every value shared by many people at scale, so the index alone does not
    identify anyone; a look-up confirms its candidates by decrypting them.
    """
    bits = bits or settings.BLIND_INDEX_BITS
    normalised = normalise_document_number(document_type, document_number)
    message = f"{document_type}:{normalised}".encode()
    digest = hmac.new(_blind_index_key(), message, hashlib.sha256).digest()
    value = int.from_bytes(digest, "big") >> (256 - bits)
    return format(value, f"0{(bits + 3) // 4}x")


class EncryptedFieldMixin:
    """Strict replacement for the library's EncryptedMixin behaviour."""

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        where = f"{self.model.__name__}.{self.name}"
        return super(emf.EncryptedMixin, self).to_python(decrypt_text(value, where=where))

    def to_python(self, value):
        # Values from forms and assignments are plaintext; never try to "decrypt" them silently.
        return super(emf.EncryptedMixin, self).to_python(value)

    def get_db_prep_save(self, value, connection):
        value = super(emf.EncryptedMixin, self).get_db_prep_save(value, connection)
        if value is None:
            return None
        return encrypt_text(str(value))

    def get_lookup(self, lookup_name):
        # A filter on ciphertext silently matches nothing; say so instead.
        if lookup_name != "isnull":
            raise FieldError(
                f"{self.name} is encrypted and cannot be filtered with '{lookup_name}': "
                "use the blind index."
            )
        return super().get_lookup(lookup_name)


class EncryptedCharField(EncryptedFieldMixin, emf.EncryptedCharField):
    pass


class EncryptedTextField(EncryptedFieldMixin, emf.EncryptedTextField):
    pass


class EncryptedDateField(EncryptedFieldMixin, emf.EncryptedDateField):
    pass


class EncryptedEmailField(EncryptedFieldMixin, emf.EncryptedEmailField):
    pass
