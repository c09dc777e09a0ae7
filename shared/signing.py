"""Ed25519 keys and signatures over canonical JSON.

Workers sign run reports and their registration; the coordinator signs the variants it accepts.
Keys and signatures travel as standard base64 text.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.canonical import canonical_json


class SignatureError(ValueError):
    """A signature or key is malformed or does not match."""


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise SignatureError("not valid base64") from exc


class SigningKey:
    """A private Ed25519 key with the operations the network needs."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_raw(cls, raw: bytes) -> SigningKey:
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """Load the key at `path`, creating it (mode 0600) on first use."""
        if path.exists():
            return cls.from_raw(b64decode(path.read_text().strip()))
        key = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting together must not both write a key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(b64encode(key.raw()) + "\n")
        return key

    def raw(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )

    @property
    def public_key(self) -> str:
        """The public key as base64 text, the form it takes on the wire."""
        raw = self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return b64encode(raw)

    def sign(self, payload: Any) -> str:
        """Sign the canonical JSON of `payload`; return the signature as base64."""
        return b64encode(self._key.sign(canonical_json(payload)))


def verify_signature(public_key: str, payload: Any, signature: str) -> None:
    """Raise SignatureError unless `signature` is `public_key`'s signature of `payload`."""
    try:
        key = Ed25519PublicKey.from_public_bytes(b64decode(public_key))
    except ValueError as exc:
        raise SignatureError("malformed public key") from exc
    try:
        key.verify(b64decode(signature), canonical_json(payload))
    except InvalidSignature as exc:
        raise SignatureError("signature does not match the payload") from exc


def check_public_key(public_key: str) -> None:
    """Raise SignatureError unless `public_key` is a well-formed Ed25519 public key."""
    try:
        Ed25519PublicKey.from_public_bytes(b64decode(public_key))
    except ValueError as exc:
        raise SignatureError("malformed public key") from exc


def variant_signature_payload(*, track_id: str, variant_hash: str) -> dict[str, str]:
    """What the coordinator signs for each variant it accepts, and what a worker checks before running
    one: the track and the source's sha256, so a signature is good for that source on that track only."""
    return {"track_id": track_id, "hash": variant_hash}
