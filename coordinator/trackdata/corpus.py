"""The `cpu-tiny` corpus: English technical prose that ships with Python, so it needs no download.

Two sources, in a fixed order: the bundled documentation topics (`pydoc_data.topics`, what
`help()` shows), then the docstrings of the standard library read by parsing each module's source
with `ast`. Parsing rather than importing keeps the build fast and free of import side effects,
and lets it read modules this platform could not import.

One module's docstrings (module, classes, functions, in source order) form one document, so a
class's docstring and its methods' stay together and land in the same split. Exact repeats are
dropped. Order and content depend only on the Python installation, never on the file system's
listing order, so the same interpreter always yields the same corpus.
"""

from __future__ import annotations

import ast
import inspect
import sysconfig
import warnings
from collections.abc import Iterator
from pathlib import Path

# A few MB keeps the first-start build in seconds on a small CPU while giving a CPU-sized model
# far more text than it can memorise in a minute.
CPU_TINY_MAX_BYTES = 4_000_000

# Test suites are mostly fixtures and asserts, not prose; site-packages is not the standard library.
_SKIPPED_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test"})

_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def clean_text(text: str) -> str:
    """Dedent, strip trailing spaces per line, drop leading and trailing blank lines."""
    lines = inspect.cleandoc(text).splitlines()
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def pydoc_topic_documents() -> Iterator[str]:
    from pydoc_data.topics import topics

    for name in sorted(topics):
        text = clean_text(topics[name])
        if text:
            yield text


def stdlib_source_files(stdlib_dir: Path) -> list[Path]:
    """Every standard-library `.py` file worth reading, sorted by its path relative to the library."""
    files = [
        path
        for path in stdlib_dir.rglob("*.py")
        if not _SKIPPED_DIRS.intersection(path.relative_to(stdlib_dir).parts[:-1])
    ]
    return sorted(files, key=lambda path: path.relative_to(stdlib_dir).as_posix())


def module_docstrings(source: str) -> list[str]:
    """The cleaned docstrings of a module, its classes and functions, in source order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # invalid escapes in old modules
        tree = ast.parse(source)
    nodes = sorted(
        (node for node in ast.walk(tree) if isinstance(node, _DOCUMENTED)),
        key=lambda node: getattr(node, "lineno", 0),
    )
    docstrings: dict[str, None] = {}  # ordered set: overloads and wrappers repeat docstrings
    for node in nodes:
        docstring = ast.get_docstring(node, clean=False)
        text = clean_text(docstring) if docstring else ""
        if text:
            docstrings[text] = None
    return list(docstrings)


def stdlib_docstring_documents(stdlib_dir: Path) -> Iterator[str]:
    for path in stdlib_source_files(stdlib_dir):
        try:
            source = path.read_text(encoding="utf-8")
            docstrings = module_docstrings(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue  # lib2to3-era fixtures and deliberately broken files: nothing to learn there
        if docstrings:
            yield "\n\n".join(docstrings)


def python_docs_corpus(*, max_bytes: int = CPU_TINY_MAX_BYTES, stdlib_dir: Path | None = None) -> list[str]:
    """The cpu-tiny documents: topics, then module docstrings, deduplicated, up to `max_bytes` of UTF-8."""
    stdlib = stdlib_dir if stdlib_dir is not None else Path(sysconfig.get_paths()["stdlib"])
    documents: list[str] = []
    seen: set[str] = set()
    total = 0
    for source in (pydoc_topic_documents(), stdlib_docstring_documents(stdlib)):
        for document in source:
            if document in seen:
                continue
            size = len(document.encode("utf-8"))
            if total + size > max_bytes:
                return documents
            seen.add(document)
            documents.append(document)
            total += size
    return documents
