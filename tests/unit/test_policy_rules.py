"""Each refusal code of the static policy, on the smallest source that earns it, and the report."""

from __future__ import annotations

import random
import string
import textwrap
import zlib

import pytest

from shared.policy import (
    CODES,
    MAX_COMPRESSED_BYTES,
    POLICY_VERSION,
    DataFigures,
    PolicyReport,
    Violation,
    check_source,
    measure_data,
)


def found(source: str) -> list[tuple[str, int]]:
    return [(v.code, v.line) for v in check_source(textwrap.dedent(source)).violations]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("import os\n", [("import_not_allowed", 1)], id="import_not_allowed"),
        pytest.param("x = 1\nexec('x = 2')\n", [("forbidden_call", 2)], id="forbidden_call"),
        pytest.param("x = 1\ny = x.__class__\n", [("dunder_access", 2)], id="dunder_access"),
        pytest.param(
            "import torch.nn.functional as F\nF.cross_entropy = None\n",
            [("module_monkeypatch", 2)],
            id="module_monkeypatch",
        ),
        pytest.param(
            "import torch\ntorch.utils.cpp_extension.load_inline('m', '')\n",
            [("native_code", 2)],
            id="native_code",
        ),
        pytest.param("import torch\nw = torch.load('w.pt')\n", [("io_access", 2)], id="io_access"),
        pytest.param("import gc\n", [("harness_access", 1)], id="harness_access"),
        pytest.param("from math import *\n", [("star_import", 1)], id="star_import"),
        pytest.param("x = 1\ns = '" + "a" * 24_577 + "'\n", [("too_much_data", 2)], id="too_much_data"),
    ],
)
def test_the_smallest_offending_source_gets_exactly_its_code_and_line(
    source: str, expected: list[tuple[str, int]]
) -> None:
    assert found(source) == expected


def test_a_source_over_the_size_limit_is_refused_before_it_is_parsed() -> None:
    report = check_source("x = (\n" + "#" * 200, max_bytes=100)  # would not even parse
    assert report.violations == (Violation("too_large", 1, 0, "the source is 206 bytes; the limit is 100"),)


def test_the_size_limit_counts_utf8_bytes_and_is_inclusive() -> None:
    assert check_source("s = 'é'\n", max_bytes=9).ok  # 9 bytes, 8 characters
    assert [v.code for v in check_source("s = 'é'\n", max_bytes=8).violations] == ["too_large"]


def test_the_default_size_limit_is_256_kib() -> None:
    at_limit = "#" * (256 * 1024 - 1) + "\n"
    assert check_source(at_limit).ok
    assert [v.code for v in check_source(at_limit + "\n").violations] == ["too_large"]


def test_nesting_too_deep_for_the_parser_is_refused_as_too_large() -> None:
    report = check_source("x = " + "-" * 100_000 + "1\n")
    assert [(v.code, v.message) for v in report.violations] == [
        ("too_large", "the source is nested too deeply to check")
    ]


def test_a_syntax_error_is_one_clean_violation_with_the_parsers_line() -> None:
    report = check_source("x = 1\nif x\n    pass\n")
    assert report.violations == (Violation("syntax_error", 2, 4, "expected ':'"),)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\x00\n", "source code string cannot contain null bytes"),
        ("s = '\udcff'\n", "the source is not valid UTF-8 text"),
    ],
    ids=["nul-byte", "lone-surrogate"],
)
def test_text_that_python_cannot_read_is_a_syntax_error(source: str, message: str) -> None:
    assert [(v.code, v.line, v.message) for v in check_source(source).violations] == [
        ("syntax_error", 1, message)
    ]


def test_summary_has_one_line_per_violation_in_source_order() -> None:
    report = check_source("import torch\ntorch.save(1, 'w')\nexec('1')\n")
    assert report.summary() == (
        "line 2: io_access: `torch.save` writes files\n"
        "line 3: forbidden_call: call to exec() is not allowed: it runs code built from strings"
    )
    assert not report.ok


def test_a_passing_report_is_ok_with_an_empty_summary() -> None:
    report = check_source("import math\nx = math.cos(0.5)\n")
    assert report == PolicyReport(violations=())
    assert report.ok
    assert report.summary() == ""


def test_violations_name_the_column_of_the_offending_node() -> None:
    (violation,) = check_source("import torch\nif True:\n    w = torch.load('w')\n").violations
    assert (violation.line, violation.col) == (3, 8)


def test_the_codes_and_version_are_the_documented_ones() -> None:
    assert POLICY_VERSION == "3"
    assert set(CODES) == {
        "too_large",
        "too_much_data",
        "syntax_error",
        "import_not_allowed",
        "forbidden_call",
        "dunder_access",
        "module_monkeypatch",
        "native_code",
        "io_access",
        "harness_access",
        "star_import",
    }


# --- too_much_data ------------------------------------------------------------------------------


def random_text(length: int, *, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + string.digits + " ") for _ in range(length))


def test_a_source_carrying_a_40_kb_string_is_refused_on_the_line_of_the_string() -> None:
    source = f'"""Brings its own validation text."""\n\nimport torch\n\nVAL_TEXT = "{random_text(40_000)}"\n'

    report = check_source(source)

    assert report.violations == (
        Violation(
            "too_much_data",
            5,
            11,
            "the source carries 40,031 bytes of literal data (strings, bytes and numbers); the cap is 24,576",
        ),
    )


def test_6000_token_ids_in_a_list_are_refused_on_the_line_where_the_total_crosses_the_cap() -> None:
    rng = random.Random(0)
    ids = [rng.randrange(10_000, 50_257) for _ in range(6_000)]  # GPT-2 token ids: 5 digits each
    rows = [", ".join(map(str, ids[i : i + 20])) + "," for i in range(0, len(ids), 20)]
    source = "VAL_IDS = [\n" + "\n".join(rows) + "\n]\n"

    (violation,) = check_source(source).violations

    # 4,916 ids of 5 digits are the first to exceed 24,576 bytes; the 4,916th is on row 246.
    assert (violation.code, violation.line) == ("too_much_data", 247)
    assert violation.message == (
        "the source carries 30,000 bytes of literal data (strings, bytes and numbers); the cap is 24,576"
    )


def test_literal_data_is_utf8_bytes_of_text_and_bytes_and_the_source_text_of_numbers() -> None:
    source = textwrap.dedent(
        '''\
        """doc"""
        b = b"ab"
        s = "é"
        f = f"x{b!r:>4}z"
        n = [1_000, 2.5, 3j, -7, 0x1F]
        flags = (True, False, None, ...)
        '''
    )
    # doc 3, ab 2, é 2, x + >4 + z 4, 1_000 5, 2.5 3, 3j 2, 7 1 (the minus is an operator), 0x1F 4
    assert measure_data(source) == DataFigures(
        literal_bytes=26, compressed_bytes=len(zlib.compress(source.encode(), 9))
    )


def test_the_literal_cap_is_inclusive() -> None:
    assert check_source("s = '" + "a" * 24_576 + "'\n").ok
    assert not check_source("s = '" + "a" * 24_577 + "'\n").ok


def test_data_hidden_in_identifiers_is_refused_by_its_compressed_size_on_line_1() -> None:
    rng = random.Random(0)
    lines = [f"x_{rng.randbytes(32).hex()} = 0\n" for _ in range(1_920)]  # 60 KiB of random bytes
    source = "import torch\n" + "".join(lines)
    compressed = len(zlib.compress(source.encode(), 9))
    assert compressed > MAX_COMPRESSED_BYTES  # the literal figure is 1,920 zeros

    report = check_source(source)

    assert report.violations == (
        Violation(
            "too_much_data",
            1,
            0,
            f"the source compresses to {compressed:,} bytes (zlib, level 9), more information than code "
            "needs; the cap is 49,152",
        ),
    )


def test_a_source_over_both_caps_gets_one_violation_for_each() -> None:
    rng = random.Random(1)
    source = "".join(f"x_{rng.randbytes(32).hex()} = '{rng.randbytes(8).hex()}'\n" for _ in range(1_920))

    assert [(v.code, v.line) for v in check_source(source).violations] == [
        ("too_much_data", 1),
        ("too_much_data", 1_537),  # 16 bytes of literal data a line: 1,537 * 16 > 24,576
    ]


def test_a_source_over_the_size_limit_is_too_large_and_nothing_else() -> None:
    source = "s = '" + random_text(300_000) + "'\n"
    assert [v.code for v in check_source(source).violations] == ["too_large"]


def test_verdicts_on_paths_are_kept_only_for_paths_of_ordinary_length() -> None:
    # A variant full of long made-up chains must not fill the coordinator's memory with verdicts.
    from shared.policy.paths import CACHED_PATH_CHARS, PATH_CACHE_SIZE, classify_path

    long_path = "torch.ops." + ".".join(f"op{i}" for i in range(CACHED_PATH_CHARS))
    held = classify_path.cache_info().currsize  # type: ignore[attr-defined]
    assert classify_path(long_path) == classify_path(long_path)
    assert classify_path.cache_info().currsize == held  # type: ignore[attr-defined]
    short_path = f"torch.nn.functional.unseen_{len(long_path)}"
    assert classify_path(short_path) == classify_path(short_path)
    info = classify_path.cache_info()  # type: ignore[attr-defined]
    assert info.currsize == min(held + 1, PATH_CACHE_SIZE) and info.hits >= 1
    # Cached or not, the verdict is the rules': a refused root is refused at any length.
    assert classify_path("torch.utils.cpp_extension.load_inline") is not None
    assert classify_path("torch.utils.cpp_extension." + "x." * CACHED_PATH_CHARS + "load_inline") is not None
