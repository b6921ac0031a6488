"""An exported file is checked on its own: by `verify_audit --file`, on a machine without the
database, and by the plain-Python verifier documented in README, which must refuse a tampered
file as surely as it accepts an intact one."""

import hashlib
import io
import itertools
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command

from registrations.audit import audit_record, checkpoint_seal, public_key_hex, signing_key
from registrations.models import AuditEvent
from tests.factories import run_verify_audit
from tests.test_startup import manage, production_env

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
README_SECTION = "## Export format and independent verification"
LINK_KEYS = {"id", "chain", "seq", "prev_hash", "hash"}


@pytest.fixture
def chain(staff):
    """Six events in one chain, positions 1 to 6."""
    return [audit_record(actor=staff, action="viewed", reason=f"event {n}") for n in range(6)]


def export_to(path: Path, *args: str) -> None:
    call_command("export_audit", "--output", str(path), *args, stdout=io.StringIO())


def audit_public_key() -> str:
    return public_key_hex(signing_key())


# verify_audit --file ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "checkpoints"),
    [
        ("csv", "0 checkpoints (0 signatures verified, 0 heads found in the file)"),
        ("jsonl", "1 checkpoints (1 signatures verified, 1 heads found in the file)"),
    ],
)
def test_verify_audit_checks_an_exported_file_without_recording_anything(
    tmp_path, chain, fmt, checkpoints
):
    checkpoint_seal()
    path = tmp_path / f"audit.{fmt}"
    export_to(path, "--format", fmt)
    before = AuditEvent.objects.count()
    code, out, err = run_verify_audit("--file", str(path), "--complete")
    assert code == 0, err
    assert out.strip() == (
        f"OK: 6 events in 1 chains, every hash intact; 5 links checked; {checkpoints}"
    )
    assert AuditEvent.objects.count() == before


def test_verify_audit_says_what_a_filtered_file_could_and_could_not_check(tmp_path, staff):
    for action in ("viewed", "viewed", "login", "viewed"):
        audit_record(actor=staff, action=action)
    path = tmp_path / "viewed.jsonl"
    export_to(path, "--action", "viewed")
    code, out, _ = run_verify_audit("--file", str(path))
    assert code == 0
    assert "OK: 3 events in 1 chains, every hash intact; 1 links checked" in out
    assert "The file is part of the log (a filtered export): 1 gaps." in out


def test_verify_audit_names_the_broken_event_of_a_tampered_file(tmp_path, chain):
    path = tmp_path / "audit.jsonl"
    export_to(path)
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace('"event 3"', '"event three"')
    path.write_text("".join(lines))
    code, _, err = run_verify_audit("--file", str(path))
    assert code == 1
    assert err.strip() == (
        f"BROKEN: event #{chain[3].id} (chain {chain[3].chain} position 4) was changed: "
        "its hash does not match"
    )


def test_verify_audit_refuses_checkpoints_not_signed_by_the_key_it_was_given(tmp_path, chain):
    checkpoint_seal()
    path = tmp_path / "audit.jsonl"
    export_to(path)
    assert run_verify_audit("--file", str(path), "--public-key", audit_public_key())[0] == 0
    another = public_key_hex(Ed25519PrivateKey.generate())
    code, _, err = run_verify_audit("--file", str(path), "--public-key", another)
    assert code == 1
    assert err.strip() == "BROKEN: checkpoint 1 is signed by a key that is not trusted"


def test_an_exported_file_is_verified_on_a_machine_without_the_database(tmp_path, chain):
    checkpoint_seal()
    path = tmp_path / "audit.jsonl"
    export_to(path)
    env = production_env(
        DJANGO_SECRET_KEY="another-machine-" + "k" * 40,
        BLIND_INDEX_KEY="another-machine",
        # That machine signs with a key of its own: the export's key is given on the command line.
        AUDIT_SIGNING_KEY="YW5vdGhlci1tYWNoaW5lcy1zaWduaW5nLWtleS0zMiE=",
        # Nothing listens there: any database access would fail.
        DATABASE_URL="postgres://nobody:nothing@127.0.0.1:9/none",
    )

    def verify(*args: str) -> subprocess.CompletedProcess:
        return manage("verify_audit", "--file", str(path), *args, env=env)

    result = verify("--complete", "--public-key", audit_public_key())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 6 events in 1 chains, every hash intact")
    assert "1 signatures verified" in result.stdout
    # Its own key is not the one that signed the export's checkpoints.
    result = verify()
    assert result.returncode == 1
    assert "checkpoint 1 is signed by a key that is not trusted" in result.stderr


# The stand-alone verifier documented in README: Python and `cryptography`, no simreg, no Django.


def documented_verifier() -> str:
    """The script in README's export section: its indented code block that checks checkpoints."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"(?:\n(?: {4}.*)?)+", section)
    [script] = [block for block in blocks if "simreg-audit-checkpoint:v1" in block]
    return textwrap.dedent(script)


@pytest.fixture
def verifier(tmp_path) -> Path:
    path = tmp_path / "verify_export.py"
    path.write_text(documented_verifier(), encoding="utf-8")
    return path


def run_documented(verifier: Path, export: Path, *keys: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-I", str(verifier), str(export), *keys],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def several_chains(store, other_store, staff, supervisor):
    """Events of two stores and of the system (three chains) under two checkpoints, with values
    that test the canonical form and the CSV escapes, and one event sealed by neither."""
    for reason in ("=cmd|' /C calc'!A0", "-1", "'quoted", "客戶 𠮷", "line\nbreak"):
        audit_record(actor=staff, action="revealed", store=store, reason=reason, details={"n": 1.5})
    checkpoint_seal()
    audit_record(actor=supervisor, action="viewed", store=other_store)
    audit_record(actor=None, actor_username="ghost", action="login_failed")
    checkpoint_seal()
    audit_record(actor=supervisor, action="viewed", store=store)
    assert len(set(AuditEvent.objects.values_list("chain", flat=True))) == 3


@pytest.mark.django_db(transaction=True)
def test_the_documented_verifier_accepts_an_intact_export_in_both_formats(
    tmp_path, verifier, several_chains
):
    for fmt in ("jsonl", "csv"):
        path = tmp_path / f"audit.{fmt}"
        export_to(path, "--format", fmt)
        result = run_documented(verifier, path, audit_public_key())
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "OK"
    # The same file checks out against simreg's own verifier, checkpoints included.
    code, out, err = run_verify_audit(
        "--file", str(tmp_path / "audit.jsonl"), "--complete", "--public-key", audit_public_key()
    )
    assert code == 0, err
    assert "8 events in 3 chains" in out
    assert "2 signatures verified" in out


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, records: list[dict]) -> None:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records),
        encoding="utf-8",
    )


def _edited_event(records: list[dict]) -> str:
    [ghost] = [r for r in records if r.get("actor_username") == "ghost"]
    ghost["actor_username"] = "ghast"
    return f"event #{ghost['id']} was changed"


def _forged_signature(records: list[dict]) -> str:
    """A forger re-signs the last checkpoint with a key of their own, naming that key."""
    checkpoint = [r for r in records if "checkpoint" in r][-1]["checkpoint"]
    forger = Ed25519PrivateKey.generate()
    message = "simreg-audit-checkpoint:v1:{number}:{at}:{root}:{prev_digest}".format(**checkpoint)
    checkpoint["public_key"] = public_key_hex(forger)
    checkpoint["signature"] = forger.sign(message.encode()).hex()
    return f"checkpoint {checkpoint['number']} is not signed by a key given"


def _altered_signature(records: list[dict]) -> str:
    checkpoint = records[0]["checkpoint"]
    signature = bytearray.fromhex(checkpoint["signature"])
    signature[0] ^= 1
    checkpoint["signature"] = signature.hex()
    return "checkpoint 1 is not signed by a key given"


def _altered_head(records: list[dict]) -> str:
    checkpoint = records[1]["checkpoint"]
    checkpoint["heads"][-1][2] = "f" * 64
    return "checkpoint 2 was altered, or one before it removed"


def _first_checkpoint_removed(records: list[dict]) -> str:
    del records[0]
    return "checkpoint 2 was altered, or one before it removed"


def _deleted_event(records: list[dict]) -> str:
    events = [r for r in records if r.get("action") == "revealed"]
    records.remove(events[2])
    return f"event #{events[3]['id']} does not follow position 2 of chain {events[3]['chain']}"


def _cut_signed_head(records: list[dict]) -> str:
    """The newest events of the stores' chain removed, down to a head a checkpoint signed."""
    revealed = [r for r in records if r.get("action") == "revealed"][-1]
    newest = [r for r in records if r.get("chain") == revealed["chain"]][-1]
    records.remove(newest)
    records.remove(revealed)
    return f"chain {revealed['chain']} position 5 was signed but is not in the file (cut)"


def _rehashed_chain(records: list[dict]) -> str:
    """An event edited and its chain re-hashed to the end: only the signed head tells."""

    def documented_hash(event: dict) -> str:
        content = {k: v for k, v in event.items() if k not in LINK_KEYS}
        digest = hashlib.sha256(
            json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()
        text = f"{event['chain']}:{event['seq']}:{event['prev_hash']}:{digest}"
        return hashlib.sha256(text.encode()).hexdigest()

    [first] = [r for r in records if r.get("reason") == "=cmd|' /C calc'!A0"]
    chain = [r for r in records if r.get("chain") == first["chain"]]
    chain[1]["reason"] = "nothing to see"
    for before, event in itertools.pairwise(chain):
        event["prev_hash"] = before["hash"]
        event["hash"] = documented_hash(event)
    return f"event #{chain[4]['id']} is not the event a checkpoint signed"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "tamper",
    [
        _edited_event,
        _forged_signature,
        _altered_signature,
        _altered_head,
        _first_checkpoint_removed,
        _deleted_event,
        _cut_signed_head,
        _rehashed_chain,
    ],
)
def test_the_documented_verifier_refuses_a_tampered_export(
    tmp_path, verifier, several_chains, tamper
):
    path = tmp_path / "audit.jsonl"
    export_to(path)
    records = _records(path)
    problem = tamper(records)
    _write(path, records)
    result = run_documented(verifier, path, audit_public_key())
    assert result.returncode != 0
    assert problem in result.stderr
    # simreg's verifier refuses the same file.
    assert run_verify_audit("--file", str(path), "--complete")[0] == 1


@pytest.mark.django_db(transaction=True)
def test_the_documented_verifier_refuses_an_export_with_the_wrong_public_key(
    tmp_path, verifier, several_chains
):
    path = tmp_path / "audit.jsonl"
    export_to(path)
    result = run_documented(verifier, path, public_key_hex(Ed25519PrivateKey.generate()))
    assert result.returncode != 0
    assert "checkpoint 1 is not signed by a key given" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_the_documented_verifier_refuses_a_csv_cell_edited_in_a_spreadsheet(
    tmp_path, verifier, several_chains
):
    path = tmp_path / "audit.csv"
    export_to(path, "--format", "csv")
    [ghost] = [
        line for line in path.read_text(encoding="utf-8-sig").splitlines() if ",ghost," in line
    ]
    path.write_bytes(path.read_bytes().replace(b",ghost,", b",ghast,"))
    result = run_documented(verifier, path, audit_public_key())
    assert result.returncode != 0
    assert f"event #{ghost.split(',')[0]} was changed" in result.stderr
