"""The examples run headless in quick mode and draw their figures."""

import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


@pytest.mark.parametrize("name", ["from_nengo.py", "parameter_sweep.py"])
def test_example_runs(name, tmp_path):
    out = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, name), "--quick", "--outdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, MPLBACKEND="Agg"),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert any(f.endswith(".png") for f in os.listdir(tmp_path))
    if name == "from_nengo.py":
        line = next(
            li for li in out.stdout.splitlines() if li.startswith("nengo vs nengojax output")
        )
        assert float(line.rsplit(":", 1)[1]) < 1e-5
    if name == "parameter_sweep.py":
        assert "vmap speedup" in out.stdout
