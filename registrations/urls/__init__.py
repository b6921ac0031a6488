"""Addresses, one module per concern, each included by `simreg.urls` under its own prefix.

Importing this package registers the `<reference:...>` converter every module uses.
"""

from django.urls import register_converter

from registrations.models import REFERENCE_ALPHABET


class ReferenceConverter:
    """A registration reference as printed on the receipt: XXXXX-XXXXX."""

    regex = f"[{REFERENCE_ALPHABET}]{{5}}-[{REFERENCE_ALPHABET}]{{5}}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ReferenceConverter, "reference")
