"""The check a worker makes on every leased variant before anything runs it (trust layer 2)."""

from __future__ import annotations

from shared.hashing import short_hash, variant_hash
from shared.protocol import VariantRef
from shared.signing import SignatureError, variant_signature_payload, verify_signature


class VariantRefused(Exception):
    """A leased variant failed the coordinator-signature or content-hash check."""


def check_variant(variant: VariantRef, *, track_id: str, coordinator_key: str) -> None:
    """Raise VariantRefused unless the pinned coordinator signed this exact source for this track."""
    if variant.track_id != track_id:
        raise VariantRefused(f"variant belongs to track {variant.track_id!r}, the lease to {track_id!r}")
    actual = variant_hash(variant.source)
    if actual != variant.hash:
        raise VariantRefused(
            f"source hashes to {short_hash(actual)}, not the claimed {short_hash(variant.hash)}"
        )
    try:
        verify_signature(
            coordinator_key,
            variant_signature_payload(track_id=variant.track_id, variant_hash=variant.hash),
            variant.signature,
        )
    except SignatureError as exc:
        raise VariantRefused(f"the coordinator's signature does not check out ({exc})") from exc
