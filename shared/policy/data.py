"""How much data a source carries: its literal data, and its compressed size.

A variant that carries the text it is scored on can memorise it, so the policy caps both. The
literal figure counts what a variant can read back directly (strings, bytes, numbers); the
compressed figure bounds information hidden anywhere else (identifiers, code structure,
comments), whatever the encoding, since no encoding carries more than it compresses to.
"""

from __future__ import annotations

import ast
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from shared.policy.context import violation
from shared.policy.report import TOO_MUCH_DATA, Violation
from shared.policy.rules import COMPRESSION_LEVEL, MAX_COMPRESSED_BYTES, MAX_LITERAL_BYTES
from shared.policy.syntax import parse


@dataclass(frozen=True)
class DataFigures:
    """A source's literal data and compressed size, in bytes."""

    literal_bytes: int
    compressed_bytes: int


def measure_data(source: str) -> DataFigures:
    """The figures the `too_much_data` rule compares with its caps; the source must parse."""
    nodes = ast.walk(parse(source))
    return DataFigures(
        literal_bytes=sum(size for _, size in literal_constants(nodes)),
        compressed_bytes=compressed_size(source),
    )


def check_data(source: str, nodes: Iterable[ast.AST]) -> Iterator[Violation]:
    """One violation per cap exceeded, each with the measured figure and the cap; `nodes` are all
    the nodes of the parsed source, in any order."""
    total = 0
    crossing: ast.Constant | None = None
    for node, size in sorted(literal_constants(nodes), key=lambda item: (item[0].lineno, item[0].col_offset)):
        total += size
        if crossing is None and total > MAX_LITERAL_BYTES:
            crossing = node
    if crossing is not None:
        yield violation(
            crossing,
            TOO_MUCH_DATA,
            f"the source carries {total:,} bytes of literal data (strings, bytes and numbers); "
            f"the cap is {MAX_LITERAL_BYTES:,}",
        )
    compressed = compressed_size(source)
    if compressed > MAX_COMPRESSED_BYTES:
        yield Violation(
            TOO_MUCH_DATA,
            1,
            0,
            f"the source compresses to {compressed:,} bytes (zlib, level {COMPRESSION_LEVEL}), more "
            f"information than code needs; the cap is {MAX_COMPRESSED_BYTES:,}",
        )


def literal_constants(nodes: Iterable[ast.AST]) -> Iterator[tuple[ast.Constant, int]]:
    """Each str, bytes or number constant among `nodes` (docstrings and f-string parts included)
    and its size: UTF-8 bytes for text, bytes for bytes, the length of its source text for a
    number."""
    for node in nodes:
        if not isinstance(node, ast.Constant):
            continue
        value = node.value
        if isinstance(value, str):
            yield node, len(value.encode("utf-8", "surrogatepass"))  # "\udcff" is a valid literal
        elif isinstance(value, bytes):
            yield node, len(value)
        elif isinstance(value, (int, float, complex)) and not isinstance(value, bool):
            # A number is one token on one line; its offsets count bytes, and its text is ASCII.
            yield node, (node.end_col_offset or node.col_offset) - node.col_offset


def compressed_size(source: str) -> int:
    return len(zlib.compress(source.encode("utf-8", "surrogatepass"), COMPRESSION_LEVEL))
