"""pytest plugin that runs nengo's own test suite against `nengojax.Simulator`.

Loaded by ``run.py`` with ``-p no:nengo -p plugin``: it re-exports the hooks of
nengo's plugin (``pytest_nengo``), replacing the one hook whose signature
pytest >= 9 rejects (``pytest_report_collectionfinish`` with ``startdir``).
Before each test it resets nengo's rc settings as nengo's own repository
conftest does (decoder cache off, no progress bars).
"""

import pytest
import pytest_nengo as _nengo
from pytest_nengo import (  # noqa: F401  (pytest finds hooks by name)
    Simulator,
    pytest_collection_modifyitems,
    pytest_generate_tests,
)


def pytest_addoption(parser):
    _nengo.pytest_addoption(parser)
    parser.addini("allclose_tolerances", type="linelist", default=[], help="pytest-allclose")


def pytest_configure(config):
    if config.pluginmanager.has_plugin("nengo"):
        raise pytest.UsageError("run with '-p no:nengo' (see tests/nengo_suite/run.py)")
    _nengo.pytest_configure(config)


def pytest_report_collectionfinish(config, start_path, items):
    return _nengo.pytest_report_collectionfinish(config, start_path, items)


def pytest_runtest_setup(item):
    from nengo.rc import rc

    rc.reload_rc([])
    rc.set("decoder_cache", "enabled", "False")
    rc.set("exceptions", "simplified", "False")
    rc.set("progress", "progress_bar", "False")
    _nengo.pytest_runtest_setup(item)


def simloader(request):
    """``nengo_simloader``: the simulator class under test."""
    import nengojax

    return nengojax.Simulator
