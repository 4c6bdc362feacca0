"""The code blocks of the docs run as written (each page in a fresh process)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_blocks(path: str) -> list[str]:
    """The ``.. code-block:: python`` blocks of an rst file, dedented."""
    with open(path) as f:
        lines = f.read().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if re.match(r"\s*\.\. code-block:: python\s*$", lines[i]):
            indent = len(lines[i]) - len(lines[i].lstrip())
            i += 1
            body = []
            while i < len(lines) and (
                not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
            ):
                body.append(lines[i])
                i += 1
            blocks.append(textwrap.dedent("\n".join(body)).strip() + "\n")
        else:
            i += 1
    return blocks


def markdown_python_blocks(path: str) -> list[str]:
    """The ```` ```python ```` fenced blocks of a markdown file."""
    with open(path) as f:
        lines = f.read().splitlines()
    blocks, body = [], None
    for line in lines:
        if body is None:
            if re.match(r"\s*```python\s*$", line):
                body = []
        elif re.match(r"\s*```\s*$", line):
            blocks.append(textwrap.dedent("\n".join(body)).strip() + "\n")
            body = None
        else:
            body.append(line)
    return blocks


def run_blocks(blocks: list[str], tmp_path) -> subprocess.CompletedProcess:
    """Run ``blocks`` one after another in one new Python process."""
    script = tmp_path / "blocks.py"
    script.write_text("\n\n".join(blocks))
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )


# pages whose code blocks their own tests run (test_converter.py, test_nir.py)
TESTED_ELSEWHERE = {"converter.rst", "nir.rst"}


def page_blocks(page: str) -> list[str]:
    """The python blocks of ``page``: README.md or a page of docs/."""
    if page == "README.md":
        return markdown_python_blocks(os.path.join(ROOT, page))
    return python_blocks(os.path.join(ROOT, "docs", page))


def pages_with_code() -> list[str]:
    """README.md and every docs page with python blocks, but those tested elsewhere."""
    pages = sorted(
        f
        for f in os.listdir(os.path.join(ROOT, "docs"))
        if f.endswith(".rst") and f not in TESTED_ELSEWHERE
    )
    return [p for p in ["README.md", *pages] if page_blocks(p)]


@pytest.mark.parametrize("page", pages_with_code())
def test_doc_page_code_runs(page, tmp_path):
    out = run_blocks(page_blocks(page), tmp_path)
    assert out.returncode == 0, out.stderr[-4000:]


def test_python_blocks_parser():
    text = "intro\n\n.. code-block:: python\n\n   a = 1\n\n   b = a + 1\n\nafter\n"
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "nengojax_blocks_test.rst")
    with open(path, "w") as f:
        f.write(text)
    assert python_blocks(path) == ["a = 1\n\nb = a + 1\n"]


def test_markdown_python_blocks_parser(tmp_path):
    text = (
        "# title\n\n```bash\nls\n```\n\n```python\na = 1\n\nb = a + 1\n```\n\n"
        "text\n\n```\nplain\n```\n\n```python\nprint(b)\n```\n"
    )
    path = tmp_path / "page.md"
    path.write_text(text)
    assert markdown_python_blocks(str(path)) == ["a = 1\n\nb = a + 1\n", "print(b)\n"]


def test_pages_with_code():
    pages = pages_with_code()
    assert "README.md" in pages and "training.rst" in pages
    assert not TESTED_ELSEWHERE & set(pages)
    assert "api.rst" not in pages  # no python blocks
