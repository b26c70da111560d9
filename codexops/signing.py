"""Ed25519 keys and DSSE envelopes: how a gate's attestation is signed and checked.

The operator's signing key lives outside the repository (`~/.config/codexops/signing-key`, or the path in
CODEX_SIGNING_KEY). The repository trusts the public keys listed in `keys/trusted-keys.txt` (one
`ed25519 <base64 public key> <owner>` per line; CODEX_TRUSTED_KEYS names another file): whoever merges a
line there vouches for that key. Envelopes follow DSSE v1 (signatures over the PAE encoding).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.spec import repo_root

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ALGORITHM = "ed25519"


class SigningError(RuntimeError):
    """A key or an envelope cannot be used; the message says what to do."""


class UntrustedKey(SigningError):
    """Signed by a key the repository does not list."""


class BadSignature(SigningError):
    """The signature does not match the payload: it was altered after signing."""


@dataclass(frozen=True)
class TrustedKey:
    keyid: str
    public: bytes  # raw 32-byte Ed25519 public key
    owner: str


def signing_key_path() -> Path:
    return Path(os.environ.get("CODEX_SIGNING_KEY") or Path.home() / ".config" / "codexops" / "signing-key")


def trusted_keys_path() -> Path:
    return Path(os.environ.get("CODEX_TRUSTED_KEYS") or repo_root() / "keys" / "trusted-keys.txt")


def key_id(public: bytes) -> str:
    """sha256 of the raw public key: names the key in envelopes and messages."""
    return "sha256:" + hashlib.sha256(public).hexdigest()


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_line(key: Ed25519PrivateKey, owner: str) -> str:
    """The line to add to keys/trusted-keys.txt for this key."""
    return f"{ALGORITHM} {base64.b64encode(public_bytes(key)).decode()} {owner}"


def create_key(path: Path) -> Ed25519PrivateKey:
    """A new key at `path` (mode 0600); an existing key is never overwritten."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    if path.exists():
        raise SigningError(f"{path} exists already: `codexops keys show` prints its public line")
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def load_key(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if not path.exists():
        raise SigningError(f"no signing key at {path}: run `codexops keys init`")
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path} is not an Ed25519 key: create one with `codexops keys init`")
    return key


def read_trusted(path: Path | None = None) -> list[TrustedKey]:
    """The keys the repository trusts; a malformed line is an error (never silently skipped)."""
    path = path or trusted_keys_path()
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SigningError(f"{path} cannot be read as a list of trusted keys: {exc}") from None
    keys = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=2)
        try:
            public = base64.b64decode(parts[1], validate=True) if len(parts) == 3 else b""
        except ValueError:
            public = b""
        if parts[0] != ALGORITHM or len(public) != 32:
            raise SigningError(f"{path}:{number}: expected `ed25519 <base64 public key> <owner>`, got {line!r}")
        keys.append(TrustedKey(key_id(public), public, parts[2]))
    return keys


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign_envelope(payload: bytes, payload_type: str, key: Ed25519PrivateKey) -> dict[str, Any]:
    signature = key.sign(pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": key_id(public_bytes(key)), "sig": base64.b64encode(signature).decode()}],
    }


def verify_envelope(envelope: dict[str, Any], trusted: list[TrustedKey]) -> tuple[bytes, TrustedKey]:
    """The payload and the trusted key whose signature verifies; UntrustedKey or BadSignature otherwise."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        payload_type = str(envelope["payloadType"])
        signatures = [(str(s["keyid"]), base64.b64decode(s["sig"], validate=True)) for s in envelope["signatures"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise BadSignature(f"not a DSSE envelope ({exc})") from None
    by_id = {k.keyid: k for k in trusted}
    for keyid, signature in signatures:
        key = by_id.get(keyid)
        if key is None:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(key.public).verify(signature, pae(payload_type, payload))
        except InvalidSignature:
            raise BadSignature(f"the signature by {key.owner}'s key does not match: altered after signing") from None
        return payload, key
    named = ", ".join(keyid for keyid, _ in signatures) or "no signature"
    raise UntrustedKey(f"signed by a key {trusted_keys_path()} does not list ({named})")
