"""`python -m watchtower.lab.keyhalf KEYFILE`: print the PEM public half of a private key.

The lab's stand-in for `openssl pkey -pubout -in KEYFILE` (mail.dkim.key-match's default
command), so the demo reads the lab mail host's signing key with nothing outside Python.
Only the public half is printed, never the private key.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m watchtower.lab.keyhalf KEYFILE", file=sys.stderr)
        return 2
    try:
        key = serialization.load_pem_private_key(Path(argv[0]).read_bytes(), None)
    except (OSError, ValueError, TypeError) as exc:
        print(f"{argv[0]}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
