"""Run nengo 4.1's backend test suite against `nengojax.Simulator`.

Usage: ``python tests/nengo_suite/run.py [pytest args] [nengo/tests/test_x.py[::test]]``
(e.g. ``-n 2``).

The tests are collected from the installed ``nengo`` package with its parent
folder as rootdir, so test ids read ``nengo/tests/test_x.py::test_y`` as in
nengo's own CI (the ``rng``/``seed`` fixtures hash these ids). Tests that
nengojax declares unsupported, with a reason for each, are in ``pytest.ini``.
"""

import os
import sys

import nengo
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv):
    nengo_dir = os.path.dirname(os.path.abspath(nengo.__file__))
    sys.path.insert(0, HERE)  # for the plugin
    os.environ["PYTHONPATH"] = HERE + os.pathsep + os.environ.get("PYTHONPATH", "")
    os.environ.setdefault("MPLBACKEND", "Agg")
    root = os.path.dirname(nengo_dir)
    # arguments naming nengo test files (nengo/tests/test_x.py[::test]) narrow the run
    targets = [os.path.join(root, a) for a in argv if a.startswith("nengo/")]
    argv = [a for a in argv if not a.startswith("nengo/")]
    args = [
        *(targets or [nengo_dir]),
        "-c",
        os.path.join(HERE, "pytest.ini"),
        "--rootdir",
        root,
        "-p",
        "no:nengo",
        "-p",
        "plugin",
        "-p",
        "no:cacheprovider",
        "--disable-warnings",
        *argv,
    ]
    return pytest.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
