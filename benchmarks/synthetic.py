"""Record references for the benchmarks' synthetic data: in the printed format, one per number,
made without a database (after `django.setup()`, as the models are imported)."""

from __future__ import annotations

from registrations.models import REFERENCE_ALPHABET, REFERENCE_LENGTH


def reference_for(n: int) -> str:
    """The n-th reference (n written in base 31 over the reference alphabet)."""
    symbols = []
    for _ in range(REFERENCE_LENGTH):
        n, digit = divmod(n, len(REFERENCE_ALPHABET))
        symbols.append(REFERENCE_ALPHABET[digit])
    body = "".join(reversed(symbols))
    return f"{body[:5]}-{body[5:]}"
