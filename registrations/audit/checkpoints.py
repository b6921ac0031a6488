"""Signed checkpoints: every chain's head at one moment, under a Merkle root signed with Ed25519.

A chain alone cannot show that its newest events were cut, or that every hash after an edited
event was recomputed: the result is a shorter or different chain that is intact. A checkpoint
closes that gap without anything kept by hand: it records each chain's head (chain, position,
hash), and `verify_audit` checks that each recorded head still exists with that hash.

The signed message is plain text, so that anyone can check it with the public key alone:

    simreg-audit-checkpoint:v1:<number>:<at>:<root>:<prev_digest>

`root` is the Merkle root over the heads sorted by chain (leaf = SHA-256(0x00 || "c:s:h"),
node = SHA-256(0x01 || left || right), an odd node is carried up as it is; no heads: SHA-256 of
nothing), and `prev_digest` is the SHA-256 of the previous checkpoint's message (GENESIS_HASH
for the first), so checkpoints form a chain of their own. Checkpoints are numbered 1, 2, ...
without gaps.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from registrations.audit.chain import GENESIS_HASH, at_text
from registrations.models import AuditChain, AuditCheckpoint, AuditEvent

MESSAGE_PREFIX = "simreg-audit-checkpoint:v1"
# Head positions looked up in one query (two parameters each; SQLite allows 32,766).
LOOKUP_BATCH = 500

Head = tuple[int, int, str]


def load_signing_key(text: str) -> Ed25519PrivateKey:
    """The key from its text form: the 32-byte Ed25519 seed in URL-safe base64."""
    try:
        seed = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ImproperlyConfigured(_key_help("is not URL-safe base64")) from exc
    if len(seed) != 32:
        raise ImproperlyConfigured(_key_help(f"holds {len(seed)} bytes, not 32"))
    return Ed25519PrivateKey.from_private_bytes(seed)


def _key_help(problem: str) -> str:
    return (
        f"AUDIT_SIGNING_KEY {problem}. It is an Ed25519 private key: 32 random bytes in URL-safe "
        "base64. Generate one with: python -c 'import base64, secrets; "
        "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'"
    )


def signing_key() -> Ed25519PrivateKey:
    text = getattr(settings, "AUDIT_SIGNING_KEY", "")
    if not text:
        raise ImproperlyConfigured(_key_help("is not set"))
    return load_signing_key(text)


def public_key_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes_raw().hex()


def trusted_public_keys() -> set[str]:
    """The public keys whose checkpoints are accepted: the signing key's own, and the older
    keys listed in AUDIT_TRUSTED_PUBLIC_KEYS (hex), so that a replaced key's checkpoints
    still verify."""
    keys = {key.strip().lower() for key in settings.AUDIT_TRUSTED_PUBLIC_KEYS if key.strip()}
    if getattr(settings, "AUDIT_SIGNING_KEY", ""):
        keys.add(public_key_hex(signing_key()))
    return keys


def leaf_hash(head: Sequence) -> bytes:
    chain, seq, hash_ = head
    return hashlib.sha256(b"\x00" + f"{chain}:{seq}:{hash_}".encode()).digest()


def merkle_root(heads: Sequence[Sequence]) -> str:
    level = [leaf_hash(head) for head in sorted(heads, key=lambda head: head[0])]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        paired = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


def signed_message(*, number: int, at: str, root: str, prev_digest: str) -> bytes:
    return f"{MESSAGE_PREFIX}:{number}:{at}:{root}:{prev_digest}".encode()


def checkpoint_message(checkpoint: AuditCheckpoint) -> bytes:
    return signed_message(
        number=checkpoint.number,
        at=at_text(checkpoint.at),
        root=checkpoint.root,
        prev_digest=checkpoint.prev_digest,
    )


def checkpoint_digest(checkpoint: AuditCheckpoint) -> str:
    return hashlib.sha256(checkpoint_message(checkpoint)).hexdigest()


def signature_valid(*, public_key: str, message: bytes, signature: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(
            bytes.fromhex(signature), message
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def signature_problem(*, public_key: str, message: bytes, signature: str, trusted: set[str]) -> str:
    """Why a checkpoint's signature is not good enough, or '': the key must be trusted and the
    signature must verify the message (in the database and in an exported file alike)."""
    if str(public_key).lower() not in trusted:
        return "is signed by a key that is not trusted"
    if not signature_valid(public_key=public_key, message=message, signature=str(signature)):
        return "its signature does not verify"
    return ""


def events_at(heads: Iterable[Sequence]) -> dict[tuple[int, int], str]:
    """The hash of the event at each (chain, position) that exists, by index look-ups."""
    found: dict[tuple[int, int], str] = {}
    batch: list[tuple[int, int]] = []
    table = AuditEvent._meta.db_table

    def look_up() -> None:
        rows = ", ".join(["(%s, %s)"] * len(batch))
        params = [value for position in batch for value in position]
        with connection.cursor() as cursor:
            cursor.execute(
                # Only placeholders are interpolated: the values travel as parameters.
                f"SELECT chain, seq, hash FROM {table} WHERE (chain, seq) IN (VALUES {rows})",  # noqa: S608
                params,
            )
            for chain, seq, hash_ in cursor.fetchall():
                found[(chain, seq)] = hash_
        batch.clear()

    for chain, seq, *_ in heads:
        batch.append((int(chain), int(seq)))
        if len(batch) >= LOOKUP_BATCH:
            look_up()
    if batch:
        look_up()
    return found


class SealRefused(Exception):
    """The heads disagree with the events: signing them would vouch for a broken log."""


def current_heads() -> list[Head]:
    return [
        (chain, seq, hash_)
        for chain, seq, hash_ in AuditChain.objects.order_by("chain").values_list(
            "chain", "seq", "hash"
        )
    ]


def checkpoint_seal() -> AuditCheckpoint | None:
    """Sign every chain's head now; None when nothing was appended since the last checkpoint
    (or another process sealed at the same moment)."""
    key = signing_key()
    heads = current_heads()
    found = events_at(heads)
    wrong = [head for head in heads if found.get((head[0], head[1])) != head[2]]
    if wrong:
        chain, seq, _ = wrong[0]
        raise SealRefused(
            f"chain {chain}: its head (position {seq}) is not an event with that hash; "
            "run verify_audit"
        )
    last = AuditCheckpoint.objects.order_by("-number").first()
    as_lists = [list(head) for head in heads]
    if last is not None and last.heads == as_lists:
        return None
    number = last.number + 1 if last else 1
    prev_digest = checkpoint_digest(last) if last else GENESIS_HASH
    at = timezone.now()
    root = merkle_root(heads)
    message = signed_message(number=number, at=at_text(at), root=root, prev_digest=prev_digest)
    try:
        with transaction.atomic():
            return AuditCheckpoint.objects.create(
                number=number,
                at=at,
                heads=as_lists,
                root=root,
                prev_digest=prev_digest,
                public_key=public_key_hex(key),
                signature=key.sign(message).hex(),
            )
    except IntegrityError:
        return None


# Verification ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointFinding:
    number: int | None
    problem: str


@dataclass
class CheckpointReport:
    checked: int = 0
    heads_checked: int = 0
    latest: AuditCheckpoint | None = None
    findings: list[CheckpointFinding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def checkpoint_problems(
    checkpoint: AuditCheckpoint, *, previous: AuditCheckpoint | None, trusted: set[str]
) -> Iterator[str]:
    """What is wrong with one checkpoint on its own and as the successor of `previous`."""
    expected = previous.number + 1 if previous else 1
    if checkpoint.number != expected:
        yield (
            f"checkpoint {expected} is missing: checkpoint {checkpoint.number} follows "
            f"{previous.number if previous else 'nothing'} (a checkpoint was deleted)"
        )
    elif checkpoint.prev_digest != (checkpoint_digest(previous) if previous else GENESIS_HASH):
        yield "does not follow the checkpoint before it (a checkpoint was altered or replaced)"
    if merkle_root(checkpoint.heads) != checkpoint.root:
        yield "its heads do not give its Merkle root (the heads were altered)"
    problem = signature_problem(
        public_key=checkpoint.public_key,
        message=checkpoint_message(checkpoint),
        signature=checkpoint.signature,
        trusted=trusted,
    )
    if problem:
        yield problem
    if previous is not None:
        now = {chain: seq for chain, seq, _ in checkpoint.heads}
        for chain, seq, _ in previous.heads:
            if now.get(chain, -1) < seq:
                yield f"chain {chain} went back from position {seq} (the chain was cut)"
                break


def checkpoints_in_order(*, upto: int | None = None) -> Iterator[AuditCheckpoint]:
    """Every checkpoint by number, a page at a time (short queries, no long-held cursor)."""
    after = 0
    checkpoints = AuditCheckpoint.objects.all()
    if upto is not None:
        checkpoints = checkpoints.filter(number__lte=upto)
    while True:
        page = list(checkpoints.filter(number__gt=after).order_by("number")[:500])
        yield from page
        if len(page) < 500:
            return
        after = page[-1].number


def checkpoints_verify(*, trusted: set[str] | None = None) -> CheckpointReport:
    """Check every checkpoint (signature, root, order) and every head it recorded."""
    trusted = trusted_public_keys() if trusted is None else trusted
    report = CheckpointReport()
    previous: AuditCheckpoint | None = None
    # Each head is looked up once: a head that did not move since the last checkpoint is the
    # same position with the same hash.
    pending: list[tuple[int, Head]] = []
    seen: dict[int, Head] = {}

    def check_heads() -> None:
        found = events_at(head for _, head in pending)
        for number, (chain, seq, hash_) in pending:
            now = found.get((chain, seq))
            if now is None:
                report.findings.append(
                    CheckpointFinding(
                        number,
                        f"chain {chain} position {seq} no longer exists "
                        "(events were cut or deleted after the checkpoint)",
                    )
                )
            elif now != hash_:
                report.findings.append(
                    CheckpointFinding(
                        number,
                        f"chain {chain} position {seq} has another hash now "
                        "(an event was edited and the chain re-hashed)",
                    )
                )
        report.heads_checked += len(pending)
        pending.clear()

    for checkpoint in checkpoints_in_order():
        for problem in checkpoint_problems(checkpoint, previous=previous, trusted=trusted):
            report.findings.append(CheckpointFinding(checkpoint.number, problem))
        for head in checkpoint.heads:
            head = (int(head[0]), int(head[1]), str(head[2]))
            if seen.get(head[0]) != head:
                seen[head[0]] = head
                pending.append((checkpoint.number, head))
        if len(pending) >= LOOKUP_BATCH:
            check_heads()
        report.checked += 1
        previous = checkpoint
    if pending:
        check_heads()
    report.latest = previous
    return report
