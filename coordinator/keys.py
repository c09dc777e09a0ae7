"""The coordinator's Ed25519 key: it signs every variant it hands out."""

from __future__ import annotations

from coordinator.config import Settings
from shared.signing import SigningKey, b64decode


def load_signing_key(settings: Settings) -> SigningKey:
    if settings.signing_key is not None:
        return SigningKey.from_raw(b64decode(settings.signing_key.get_secret_value().strip()))
    # Development only (Settings refuses a missing key in production).
    return SigningKey.load_or_create(settings.data_dir / "coordinator.key")


def variant_signature_payload(*, track_id: str, variant_hash: str) -> dict[str, str]:
    """What the coordinator signs for a variant. Workers check the same dict."""
    return {"track_id": track_id, "hash": variant_hash}
