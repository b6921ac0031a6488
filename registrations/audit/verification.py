"""Verifying the audit log in the database: every event, every link, every checkpoint.

For each chain, events must run 1, 2, 3, ... with each `prev_hash` equal to the hash before it
and each hash equal to the one recomputed from the event's columns; the chain's head row must
be its last event (a cut tail leaves the head pointing past the end). Every checkpoint must be
signed by a trusted key, follow the one before it, and name heads that still exist with those
hashes, which catches an edit followed by a re-hash, a deleted-and-renumbered event, a forged
insertion and a cut tail. Anchors (a chain, a position and a hash recorded outside simreg) are
checked the same way and stay useful for events newer than the last checkpoint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from registrations.audit.chain import (
    COMMAND_LINE,
    GENESIS_HASH,
    Origin,
    audit_record,
    link_hash,
)
from registrations.audit.checkpoints import (
    CheckpointReport,
    checkpoints_verify,
    current_heads,
    events_at,
)
from registrations.audit.reading import chain_rows, chains_present, content_json
from registrations.models import AuditEvent, User

ROWS_PER_QUERY = 5000
PROGRESS_EVERY = 10_000
# The largest position a database can hold (a signed 64-bit integer).
MAX_SEQ = 2**63 - 1

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the log: where (a chain and a position, when known) and what."""

    chain: int | None
    seq: int | None
    problem: str

    def __str__(self) -> str:
        if self.chain is None:
            return self.problem
        if self.seq is None:
            return f"chain {self.chain}: {self.problem}"
        return f"chain {self.chain} position {self.seq}: {self.problem}"


@dataclass
class ChainReport:
    """What the walk over every chain found; `checked` counts the events that were checked."""

    checked: int = 0
    chains: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def broken_seq(self) -> int | None:
        return self.findings[0].seq if self.findings else None

    @property
    def problem(self) -> str:
        return str(self.findings[0]) if self.findings else ""


def _event_rows() -> Iterator[tuple[int, int, str, str, str]]:
    """(chain, seq, prev_hash, hash, content digest) of every event, chain by chain."""
    for chain in chains_present():
        for row in chain_rows(chain):
            digest = hashlib.sha256(content_json(row).encode()).hexdigest()
            yield row.chain, row.seq, row.prev_hash, row.hash, digest


def chains_verify(*, progress: Progress | None = None) -> tuple[ChainReport, list[tuple]]:
    """Walk every chain; return the report and each chain's last event (chain, seq, hash)."""
    report = ChainReport()
    head_rows = {chain: (seq, hash_) for chain, seq, hash_ in current_heads()}
    heads = {chain: seq for chain, (seq, _) in head_rows.items()}
    head_hashes = {chain: hash_ for chain, (_, hash_) in head_rows.items()}
    total = sum(heads.values())
    last: dict[int, tuple[int, str]] = {}
    broken: set[int] = set()
    chain, expected_seq, expected_prev = None, 1, GENESIS_HASH
    for event_chain, seq, prev_hash, hash_, content in _event_rows():
        if event_chain != chain:
            chain, expected_seq, expected_prev = event_chain, 1, GENESIS_HASH
            report.chains += 1
        report.checked += 1
        if progress is not None and report.checked % PROGRESS_EVERY == 0:
            progress(report.checked, max(total, report.checked))
        last[chain] = (seq, hash_)
        if chain in broken:
            continue
        problem = ""
        if seq != expected_seq:
            problem = (
                f"position {expected_seq} is missing (deleted): found {seq}"
                if seq > expected_seq
                else f"position {seq} is repeated or out of order"
            )
        elif prev_hash != expected_prev:
            problem = (
                "does not link to the event before it (an event was inserted, deleted or reordered)"
            )
        elif link_hash(chain=chain, seq=seq, prev_hash=prev_hash, content=content) != hash_:
            problem = "was edited after it was written"
        if problem:
            report.findings.append(Finding(chain, min(seq, expected_seq), problem))
            broken.add(chain)
            continue
        expected_seq, expected_prev = seq + 1, hash_
    if progress is not None:
        progress(report.checked, max(total, report.checked))
    for head_chain, head_seq in sorted(heads.items()):
        last_seq, last_hash = last.get(head_chain, (0, GENESIS_HASH))
        if head_seq > last_seq:
            report.findings.append(
                Finding(
                    head_chain,
                    last_seq + 1,
                    f"positions {last_seq + 1} to {head_seq} are missing from the end "
                    "(the tail was cut)",
                )
            )
        elif head_seq == last_seq and head_hashes[head_chain] != last_hash:
            report.findings.append(
                Finding(head_chain, head_seq, "the chain's head names another hash")
            )
    for orphan in sorted(set(last) - set(heads)):
        report.findings.append(Finding(orphan, None, "has events but no head"))
    ends = [(chain, seq, hash_) for chain, (seq, hash_) in sorted(last.items())]
    return report, ends


def audit_chain_verify() -> ChainReport:
    """Walk every chain and compare each head, without recording anything (for tests and
    checks that record their own outcome)."""
    return chains_verify()[0]


# Anchors -------------------------------------------------------------------------------------

ANCHOR_PATTERN = re.compile(
    r"(?:HEAD\s+)?(?:"
    r"(?:(?P<chain>\d+):)?\#?(?P<seq>\d+):(?P<hash>[0-9a-f]{64})"  # [CHAIN:]SEQ:HASH
    r"|chain=(?P<chain2>\d+)\s+seq=(?P<seq2>\d+)\s+hash=(?P<hash2>[0-9a-f]{64})"
    r")",
    re.ASCII | re.IGNORECASE,
)


def position_number(text: str) -> int | None:
    """A position written in ASCII digits, 1 to MAX_SEQ; None for anything else.

    `str.isdigit` alone is not enough: it accepts "²", which `int` refuses.
    """
    if not (text.isascii() and text.isdecimal()) or len(text) > len(str(MAX_SEQ)):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_SEQ else None


@dataclass(frozen=True)
class Anchor:
    """A chain, a position in it and the hash it had, recorded outside simreg after a check."""

    chain: int
    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """`CHAIN:SEQ:HASH` (or `SEQ:HASH` for chain 0); the `HEAD chain=C seq=S hash=H` line
        that verify_audit prints works too."""
        match = ANCHOR_PATTERN.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"not an anchor (CHAIN:SEQ:HASH): {text!r}")
        seq = position_number(match["seq"] or match["seq2"])
        chain_text = match["chain"] or match["chain2"] or "0"
        if seq is None or len(chain_text) > 5 or int(chain_text) > 32767:
            raise ValueError(f"not a chain position: {text!r}")
        return cls(chain=int(chain_text), seq=seq, hash=(match["hash"] or match["hash2"]).lower())

    def __str__(self) -> str:
        return f"{self.chain}:{self.seq}:{self.hash}"


@dataclass(frozen=True)
class AnchorCheck:
    """An anchor and the hash its event has now (None: the event no longer exists)."""

    anchor: Anchor
    found_hash: str | None

    @property
    def matches(self) -> bool:
        return self.found_hash == self.anchor.hash


@dataclass
class AuditCheck:
    """Everything one verification found."""

    chain: ChainReport
    checkpoints: CheckpointReport
    heads: list[Anchor] = field(default_factory=list)
    anchors: tuple[AnchorCheck, ...] = ()
    unsealed: int = 0

    @property
    def ok(self) -> bool:
        return (
            self.chain.ok and self.checkpoints.ok and all(check.matches for check in self.anchors)
        )

    @property
    def mismatched(self) -> list[AnchorCheck]:
        return [check for check in self.anchors if not check.matches]

    @property
    def problems(self) -> list[str]:
        """Every finding as one line, in the order an auditor would read them."""
        lines = [str(finding) for finding in self.chain.findings]
        lines += [
            f"checkpoint {finding.number}: {finding.problem}"
            for finding in self.checkpoints.findings
        ]
        for check in self.mismatched:
            what = (
                "no longer exists"
                if check.found_hash is None
                else f"now has the hash {check.found_hash}"
            )
            lines.append(
                f"anchor {check.anchor.chain}:{check.anchor.seq} does not match: the event "
                f"{what} (the log was cut or re-written)"
            )
        return lines

    def details(self) -> dict[str, Any]:
        latest = self.checkpoints.latest
        details: dict[str, Any] = {
            "ok": self.ok,
            "checked": self.chain.checked,
            "chains": self.chain.chains,
            "checkpoints": self.checkpoints.checked,
            "latest_checkpoint": latest.number if latest else None,
            "unsealed": self.unsealed,
            # Positions and short texts only: enough to find the break, nothing identifying.
            "problems": self.problems[:20],
        }
        if self.anchors:
            details["anchors"] = [
                {
                    "chain": check.anchor.chain,
                    "seq": check.anchor.seq,
                    "hash": check.anchor.hash,
                    "matches": check.matches,
                }
                for check in self.anchors
            ]
        return details


def _unsealed(ends: Sequence[tuple], report: CheckpointReport) -> int:
    """How many events are newer than the last checkpoint (only anchors can vouch for them)."""
    heads = report.latest.heads if report.latest else []
    sealed = {int(chain): int(seq) for chain, seq, _ in heads}
    return sum(max(0, seq - sealed.get(chain, 0)) for chain, seq, _ in ends)


def audit_chain_check(
    *,
    actor: User | None,
    origin: Origin = COMMAND_LINE,
    anchors: Sequence[Anchor] = (),
    progress: Progress | None = None,
) -> AuditCheck:
    """Verify every chain, every checkpoint and each anchor, then record that the log was
    verified, with the outcome (the check's own event comes after what it checked)."""
    chain_report, ends = chains_verify(progress=progress)
    checkpoint_report = checkpoints_verify()
    found = events_at((anchor.chain, anchor.seq) for anchor in anchors)
    check = AuditCheck(
        chain=chain_report,
        checkpoints=checkpoint_report,
        heads=[Anchor(chain=chain, seq=seq, hash=hash_) for chain, seq, hash_ in ends],
        anchors=tuple(
            AnchorCheck(anchor, found.get((anchor.chain, anchor.seq))) for anchor in anchors
        ),
        unsealed=_unsealed(ends, checkpoint_report),
    )
    audit_record(
        actor=actor, action=AuditEvent.Action.VERIFIED, origin=origin, details=check.details()
    )
    return check
