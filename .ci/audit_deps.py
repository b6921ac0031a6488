"""Check the installed packages against a vulnerability database snapshot, offline.

CI has no network beyond the package index, so no live advisory service can be asked. The
`safety-db` package ships a snapshot of the PyUp advisory database as JSON; this script compares
every installed distribution's version with the vulnerable ranges it lists, exits 1 on a match,
and says plainly how old the snapshot is: advisories published after it are NOT checked here.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import sys
from importlib import metadata
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version


def main() -> int:
    # Located, not imported: the package's own __init__ reads its files from the working folder.
    spec = importlib.util.find_spec("safety_db")
    if spec is None or not spec.submodule_search_locations:
        print("Dependency audit NOT done: the safety-db snapshot is not installed.")
        return 1
    database = Path(next(iter(spec.submodule_search_locations)))
    full = json.loads((database / "insecure_full.json").read_text(encoding="utf-8"))
    meta = full.pop("$meta", {})
    stamp = meta.get("timestamp")
    taken = (
        datetime.datetime.fromtimestamp(stamp, tz=datetime.UTC).date().isoformat()
        if stamp
        else "an unknown date"
    )
    advisories = {canonicalize_name(name): entries for name, entries in full.items()}
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in metadata.distributions()
        if dist.metadata["Name"]
    }
    findings = []
    for name, version_text in sorted(installed.items()):
        try:
            version = Version(version_text)
        except InvalidVersion:
            continue
        for advisory in advisories.get(name, []):
            for spec in advisory.get("specs", []):
                try:
                    vulnerable = version in SpecifierSet(spec)
                except InvalidSpecifier:
                    continue
                if vulnerable:
                    findings.append((name, version_text, advisory.get("id", "?"), spec))
                    break
    print(
        f"Dependency audit: {len(installed)} installed packages checked offline against the "
        f"safety-db snapshot of {taken} ({len(advisories)} packages with advisories)."
    )
    print(
        f"NOT checked: advisories published after {taken}. Where the network allows, run "
        "`pip-audit -r requirements/app.lock` as well."
    )
    for name, version, advisory_id, spec in findings:
        print(f"VULNERABLE: {name} {version} matches {spec} ({advisory_id})")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
