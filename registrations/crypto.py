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


@receiver(setting_changed)
def _reset_keys(*, setting: str, **kwargs: object) -> None:
    if setting in {"FIELD_ENCRYPTION_KEY", "BLIND_INDEX_KEY"}:
        crypter.cache_clear()
        _primary_only.cache_clear()
        _blind_index_key.cache_clear()
        _pseudonym_key.cache_clear()


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
