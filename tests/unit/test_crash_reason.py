"""A crash said in one bounded line: the variant's own frames, and a message scrubbed of what could
carry the volunteer's data."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from worker.execution.crash import MAX_MESSAGE_CHARS, MAX_REASON_CHARS, crash_reason, scrub_message


def load_variant(tmp_path: Path, source: str) -> tuple[ModuleType, Path]:
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location("crash_reason_variant", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


def reason_of(tmp_path: Path, source: str) -> str:
    module, path = load_variant(tmp_path, source)
    with pytest.raises(Exception) as caught:
        module.train(None)
    return crash_reason("train() raised", caught.value, variant_file=path)


def test_the_reason_names_the_variants_own_frames_innermost_first_and_no_library_frame(tmp_path: Path) -> None:
    source = """
    import json


    def train(ctx):
        return outer()


    def outer():
        return middle()


    def middle():
        return inner()


    def inner():
        return json.loads("{")
    """

    reason = reason_of(tmp_path, source)

    # Three frames at most: train's own is the fourth and is left out; json's are not the variant's.
    assert reason == (
        "train() raised JSONDecodeError at train.py:18 in inner <- train.py:14 in middle <- train.py:10 in outer:"
        " Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )


def test_an_exception_without_the_variants_frames_says_only_its_class_and_message(tmp_path: Path) -> None:
    reason = crash_reason("importing train.py raised", KeyError("lr"), variant_file=tmp_path / "train.py")

    assert reason == "importing train.py raised KeyError: 'lr'"


def test_an_exception_with_an_empty_message_has_no_colon(tmp_path: Path) -> None:
    reason = reason_of(tmp_path, "def train(ctx):\n    raise StopIteration\n")

    assert reason == "train() raised StopIteration at train.py:2 in train"


def test_the_class_name_keeps_only_plain_identifier_characters(tmp_path: Path) -> None:
    odd = type("Bad\u00e9\nName<script>", (Exception,), {})

    assert crash_reason("train() raised", odd("x"), variant_file=tmp_path / "train.py") == (
        "train() raised BadNamescript: x"
    )


@pytest.mark.parametrize(
    ("message", "scrubbed"),
    [
        # Quoted text longer than a word may be the contents of a file the variant read.
        ("token 'sk-live-0123456789abcdef' rejected", "token '…' rejected"),
        ('key "AKIAIOSFODNN7EXAMPLE0" bad', 'key "…" bad'),
        ("unknown key 'lr'", "unknown key 'lr'"),
        # Absolute paths say where this machine keeps things: only the last part stays.
        ("[Errno 2] No such file or directory: '/home/alice/data/secret.txt'", "[Errno 2] No such file or directory: 'secret.txt'"),
        ("cannot open /home/alice/.ssh/id_rsa for reading", "cannot open id_rsa for reading"),
        ("ratio 3/4 is fine", "ratio 3/4 is fine"),
        # Non-printable and non-ASCII characters become "?".
        ("tab\there caf\u00e9 \x1b[31mred", "tab?here caf? ?[31mred"),
        # The first line only, unless the message is a whole traceback: then its last line.
        ("a long story\nwith a secret on line two", "a long story"),
        ("Traceback (most recent call last):\n  File 'x'\nValueError: the real cause", "ValueError: the real cause"),
        ("  \n\n  ", ""),
    ],
    ids=["long-single-quoted", "long-double-quoted", "short-quoted", "path-in-quotes", "bare-path", "fraction",
         "non-printable", "first-line", "traceback", "blank"],
)  # fmt: skip
def test_the_message_is_scrubbed_of_what_could_carry_data(message: str, scrubbed: str) -> None:
    assert scrub_message(message) == scrubbed


def test_the_message_and_the_whole_reason_are_bounded(tmp_path: Path) -> None:
    name = "a_function_with_a_name_long_enough_to_push_the_reason_past_its_bound_" * 2
    source = f"""
    def train(ctx):
        return {name}1()


    def {name}1():
        return {name}2()


    def {name}2():
        raise ValueError("x" * 10_000)
    """

    reason = reason_of(tmp_path, source)

    whole = (
        f"train() raised ValueError at train.py:11 in {name}2 <- train.py:7 in {name}1 <- train.py:3 in train: "
        + "x" * MAX_MESSAGE_CHARS
    )
    assert len(whole) > MAX_REASON_CHARS
    assert reason == whole[:MAX_REASON_CHARS]
    assert scrub_message("y" * 10_000) == "y" * MAX_MESSAGE_CHARS
