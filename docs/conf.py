"""Sphinx configuration for the nengojax documentation.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (warnings are
errors; ``tests/test_docs.py`` does the same).
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import nengojax  # noqa: E402

project = "nengojax"
author = "nengojax contributors"
copyright = "nengojax contributors"  # noqa: A001
version = release = nengojax.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]

# numpydoc-style docstrings, read by napoleon (no extra dependency)
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

# `name` in docstrings links to the Python object of that name
default_role = "py:obj"

autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc sections give the types
autodoc_default_options = {"members": True}

exclude_patterns = ["_build"]
templates_path = []
html_static_path = ["_static"]
html_theme = "alabaster"
html_theme_options = {"description": "Nengo models on JAX", "fixed_sidebar": True}
pygments_style = "sphinx"
