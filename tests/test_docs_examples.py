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


def run_blocks(blocks: list[str], tmp_path) -> subprocess.CompletedProcess:
    """Run ``blocks`` one after another in one new Python process."""
    script = tmp_path / "blocks.py"
    script.write_text("\n\n".join(blocks))
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )


@pytest.mark.parametrize("page", ["architecture.rst"])
def test_doc_page_code_runs(page, tmp_path):
    blocks = python_blocks(os.path.join(ROOT, "docs", page))
    assert blocks, f"no python code blocks in {page}"
    out = run_blocks(blocks, tmp_path)
    assert out.returncode == 0, out.stderr[-4000:]


def test_python_blocks_parser():
    text = "intro\n\n.. code-block:: python\n\n   a = 1\n\n   b = a + 1\n\nafter\n"
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "nengojax_blocks_test.rst")
    with open(path, "w") as f:
        f.write(text)
    assert python_blocks(path) == ["a = 1\n\nb = a + 1\n"]
