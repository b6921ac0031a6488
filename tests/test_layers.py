"""Layers: every audit event is written by a service, and pages reach the audit log through its
entry point only.

`audit_record` appends an event. Outside the audit package only the services call it, each in
the transaction of the write or the read it records; views, forms, the admin, commands and
signal receivers call a service. Views, forms and template tags import the audit package's
entry point (`registrations.audit`), never one of its modules.
"""

from __future__ import annotations

import ast
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("registrations", "simreg")
AUDIT = "registrations.audit"
AUDIT_WRITER = "audit_record"
# The only places that may write an audit event.
WRITERS = ("registrations/services/", "registrations/audit/")
# Pages and what they are built from: the audit package's entry point only.
PRESENTATION = ("registrations/views/", "registrations/forms/", "registrations/templatetags/")
AUDIT_MODULES = frozenset(
    module.name for module in pkgutil.iter_modules([str(ROOT / "registrations" / "audit")])
)


def _modules() -> list[Path]:
    return sorted(path for package in SCANNED for path in (ROOT / package).rglob("*.py"))


def _name(path: Path) -> str:
    """The dotted name of a module of the repository."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_from(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute name of the module an import takes names from."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _dotted(node: ast.expr) -> str:
    """`a.b.c` for an attribute chain on a name, "" for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join([node.id, *reversed(parts)])


def _audit_aliases(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """The names under which a module refers to the audit package itself."""
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == AUDIT:
                    aliases.add(alias.asname or AUDIT)
                elif AUDIT.startswith(f"{alias.name}.") and alias.asname is None:
                    # `import registrations` gives `registrations.audit` once it is imported.
                    aliases.add(AUDIT)
        elif isinstance(node, ast.ImportFrom):
            source = _imported_from(node, module, is_package)
            for alias in node.names:
                if f"{source}.{alias.name}" == AUDIT:
                    aliases.add(alias.asname or alias.name)
    return aliases


def audit_writes(source: str, module: str, is_package: bool = False) -> Iterator[int]:
    """The lines where a module reaches `audit_record`, however it is imported or named."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source_module = _imported_from(node, module, is_package)
            for alias in node.names:
                star = alias.name == "*" and (
                    source_module == AUDIT or source_module.startswith(f"{AUDIT}.")
                )
                if alias.name == AUDIT_WRITER or star:
                    yield node.lineno
        elif isinstance(node, ast.Import):
            if any(alias.name.endswith(f".{AUDIT_WRITER}") for alias in node.names):
                yield node.lineno
        elif isinstance(node, ast.Attribute) and node.attr == AUDIT_WRITER:
            yield node.lineno
        elif isinstance(node, ast.Call):
            # getattr(audit, "audit_record"), import_string("registrations.audit.audit_record")
            names = [
                argument.value
                for argument in node.args
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str)
            ]
            if any(name.split(".")[-1] == AUDIT_WRITER for name in names):
                yield node.lineno


def audit_internals(source: str, module: str, is_package: bool = False) -> Iterator[int]:
    """The lines where a module reaches into one of the audit package's modules."""
    tree = ast.parse(source)
    internal = {f"{AUDIT}.{name}" for name in AUDIT_MODULES}
    aliases = _audit_aliases(tree, module, is_package)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(alias.name.startswith(f"{AUDIT}.") for alias in node.names):
                yield node.lineno
        elif isinstance(node, ast.ImportFrom):
            source_module = _imported_from(node, module, is_package)
            taken = {f"{source_module}.{alias.name}" for alias in node.names}
            if source_module.startswith(f"{AUDIT}.") or taken & internal:
                yield node.lineno
        elif isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if any(dotted == f"{alias}.{name}" for alias in aliases for name in AUDIT_MODULES):
                yield node.lineno


def _offenders(check, where) -> list[str]:
    found = []
    for path in _modules():
        relative = path.relative_to(ROOT).as_posix()
        if not where(relative):
            continue
        source = path.read_text(encoding="utf-8")
        lines = check(source, _name(path), path.name == "__init__.py")
        found.extend(f"{relative}:{line}" for line in sorted(set(lines)))
    return found


def test_the_scan_sees_the_views_forms_and_services():
    scanned = {path.relative_to(ROOT).as_posix() for path in _modules()}
    assert {
        "registrations/views/compliance.py",
        "registrations/forms/counter.py",
        "registrations/services/reads.py",
        "registrations/admin.py",
        "simreg/settings.py",
    } <= scanned
    assert {"chain", "checkpoints", "export", "verification"} <= AUDIT_MODULES


def test_only_services_and_the_audit_package_write_audit_events():
    """A view, form, admin page, command or signal receiver that needs an event calls a
    service: the event is then written where the action it records is."""
    offenders = _offenders(audit_writes, lambda path: not path.startswith(WRITERS))
    assert offenders == [], f"audit_record used outside the services: {offenders}"


def test_pages_use_the_audit_package_entry_point_only():
    offenders = _offenders(audit_internals, lambda path: path.startswith(PRESENTATION))
    assert offenders == [], f"audit internals imported by a page: {offenders}"


@pytest.mark.parametrize(
    "source",
    [
        "from registrations.audit import audit_record",
        "from registrations.audit import Origin, audit_record as write",
        "from registrations.audit.chain import audit_record",
        "from registrations.audit import *",
        "from ..audit import audit_record",
        "from registrations import audit\naudit.audit_record(actor=None, action='x')",
        "import registrations.audit\nregistrations.audit.audit_record(actor=None, action='x')",
        "import registrations.audit.chain as chain\nchain.audit_record(actor=None, action='x')",
        "from registrations import audit\ngetattr(audit, 'audit_record')",
        "from django.utils.module_loading import import_string\n"
        "import_string('registrations.audit.audit_record')",
    ],
)
def test_every_way_of_reaching_audit_record_is_caught(source):
    assert list(audit_writes(source, "registrations.views.counter")) != []


@pytest.mark.parametrize(
    "source",
    [
        "from registrations.audit.chain import event_hash",
        "from registrations.audit import chain",
        "from ..audit import checkpoints",
        "from ..audit.export import AuditExport",
        "import registrations.audit.verification",
        "from registrations import audit\naudit.chain.event_hash",
        "import registrations\nregistrations.audit.checkpoints.signing_key()",
    ],
)
def test_every_way_of_reaching_audit_internals_is_caught(source):
    assert list(audit_internals(source, "registrations.views.counter")) != []


@pytest.mark.parametrize(
    "source",
    [
        "from registrations.audit import COMMAND_LINE, Origin",
        "from registrations import audit\naudit.Origin.of(None)",
        "from registrations import services\nservices.audit_log_view_list",
        '"""Every read is recorded by audit_record, through a service."""',
    ],
)
def test_the_entry_point_itself_is_allowed(source):
    assert list(audit_writes(source, "registrations.views.counter")) == []
    assert list(audit_internals(source, "registrations.views.counter")) == []
