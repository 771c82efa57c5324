"""Every Python code block of docs/library.md runs as written.

The blocks are run in order in one namespace, as a reader would paste them into one session,
in an empty working directory: a block may use what an earlier block made, never a file or
name the page does not create.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """(line number, dedented source) of each ```python block, indented ones included."""
    text = page.read_text(encoding="utf-8")
    found = []
    for m in BLOCK.finditer(text):
        indent = len(m.group(1))
        source = "".join(line[indent:] for line in m.group(2).splitlines(keepends=True))
        found.append((text.count("\n", 0, m.start()) + 1, source))
    return found


def test_the_page_has_blocks():
    assert len(python_blocks(DOCS / "library.md")) >= 8


def test_every_library_block_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_library"}
    for line, source in python_blocks(DOCS / "library.md"):
        code = compile(source, f"docs/library.md:{line}", "exec")
        try:
            exec(code, namespace)
        except Exception as exc:  # name the block that failed
            pytest.fail(f"docs/library.md block at line {line} failed: {type(exc).__name__}: {exc}")
