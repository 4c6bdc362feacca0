"""The documentation builds with Sphinx, warnings as errors, and its API page
covers every public name."""

import os
import re
import subprocess
import sys

import pytest

import nengojax

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")


def test_docs_build(tmp_path):
    pytest.importorskip("sphinx")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            DOCS,
            str(tmp_path / "html"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-5000:])
    assert (tmp_path / "html" / "index.html").exists()
    assert (tmp_path / "html" / "api.html").exists()


def test_api_page_lists_public_names():
    with open(os.path.join(DOCS, "api.rst")) as f:
        text = f.read()
    documented = set(re.findall(r"^\.\. auto\w+:: nengojax\.(\w+)", text, flags=re.M))
    missing = sorted(set(nengojax.__all__) - documented)
    assert not missing, f"add these public names to docs/api.rst: {missing}"
