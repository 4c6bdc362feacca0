"""Test configuration: nengo's decoder cache and progress bars off."""

import pytest
from nengo.rc import rc


@pytest.fixture(autouse=True)
def _nengo_rc():
    rc.set("decoder_cache", "enabled", "False")
    rc.set("progress", "progress_bar", "False")
    yield
