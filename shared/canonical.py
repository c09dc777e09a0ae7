"""Canonical JSON: the exact bytes that get signed.

Two parties that hold the same data must produce the same bytes, so keys are sorted,
separators carry no whitespace, text is UTF-8 and non-finite floats are refused (they have no
JSON spelling and would make a metric unverifiable).
"""

from __future__ import annotations

import json
from typing import Any


class CanonicalJSONError(ValueError):
    """The value cannot be written as canonical JSON."""


def canonical_json(value: Any) -> bytes:
    """Return the canonical UTF-8 JSON encoding of `value`.

    >>> canonical_json({"b": 1, "a": [1.5, "é"]})
    b'{"a":[1.5,"\\xc3\\xa9"],"b":1}'
    """
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CanonicalJSONError(str(exc)) from exc
    return text.encode("utf-8")
