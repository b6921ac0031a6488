"""Local key file: generate development keys and load them into the environment.

Kept free of Django imports so that settings can use it and `python -m simreg.keys` can run
before anything is configured.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path

KEY_HELP = {
    "DJANGO_SECRET_KEY": "python -c 'import secrets; print(secrets.token_urlsafe(50))'",
    "FIELD_ENCRYPTION_KEYS": (
        "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
    ),
    "BLIND_INDEX_KEY": "python -c 'import secrets; print(secrets.token_urlsafe(32))'",
    "AUDIT_SIGNING_KEY": (
        "python -c 'import base64, secrets; "
        "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'"
    ),
}


def generate_keys() -> dict[str, str]:
    return {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "BLIND_INDEX_KEY": secrets.token_urlsafe(32),
        "AUDIT_SIGNING_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip().strip("'\"")
    return values


def load_env_file(path: Path) -> None:
    """Put the file's values into os.environ without overriding what is already set."""
    if path.is_file():
        for name, value in read_env_file(path).items():
            os.environ.setdefault(name, value)


def write_dev_env_file(path: Path) -> bool:
    """Create the git-ignored development key file once; never overwrite keys that encrypt data.

    A file from an older version gains the keys it lacks, and keeps every key it has."""
    if path.exists():
        missing = {
            name: value
            for name, value in generate_keys().items()
            if name not in read_env_file(path)
        }
        if not missing:
            return False
        with path.open("a", encoding="utf-8") as file:
            file.writelines(f"{name}={value}\n" for name, value in missing.items())
        return True
    lines = [
        "# Development keys, generated locally. Never commit this file or use it in production."
    ]
    lines += [f"{name}={value}" for name, value in generate_keys().items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return True


if __name__ == "__main__":
    target = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / ".env"
    )
    if write_dev_env_file(target):
        print(f"Generated development keys in {target.name}")
    else:
        print(f"Keeping existing keys in {target.name}")
