"""The examples run headless in quick mode and draw their figures."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
NAMES = [
    "from_nengo.py",
    "learning.py",
    "lmu.py",
    "parameter_sweep.py",
    "spa_memory.py",
    "spa_retrieval.py",
    "spiking_digits.py",
    "spiking_mnist.py",
]
NEEDS = {"spiking_digits.py": "sklearn", "lmu.py": "sklearn", "spiking_mnist.py": "sklearn"}


def _diff(stdout, prefix):
    """The "max abs diff" printed on the first line starting with ``prefix``."""
    line = next(li for li in stdout.splitlines() if li.startswith(prefix))
    return float(re.search(r"max abs diff:? ([-+.0-9eE]+)", line).group(1))


def test_every_example_is_tested():
    found = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".py"))
    assert found == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_example_runs(name, tmp_path):
    if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
        pytest.skip(f"{name} needs {NEEDS[name]}")
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
        assert out.stdout.startswith("nengo vs nengojax output, max abs diff:")
        assert _diff(out.stdout, "nengo vs nengojax output") < 1e-5
        assert _diff(out.stdout, "without synapses, nengo vs nengojax") < 1e-5
        assert _diff(out.stdout, "JaxNode vs NumPy Node") < 1e-5
        assert _diff(out.stdout, "after freeze_params") < 1e-5
        assert "spiking test error" in out.stdout
    if name == "parameter_sweep.py":
        assert "vmap speedup" in out.stdout
    if name == "spiking_digits.py":
        assert "rate accuracy on the test set" in out.stdout
        assert "spiking accuracy, scale" in out.stdout
    if name == "spiking_mnist.py":
        assert "Accuracy after training (rate)" in out.stdout
        # sim.evaluate with the notebook's accuracy "loss" agrees with predict
        spiking = float(out.stdout.split("Accuracy after training (spiking, 10 steps): ")[1][:6])
        assert abs(float(out.stdout.split("evaluate: ")[1][:6]) - spiking) < 1e-3
    if name == "lmu.py":
        assert _diff(out.stdout, "nengojax vs plain JAX forward pass") < 1e-4
        assert _diff(out.stdout, "after training, nengojax vs plain JAX") < 1e-4
        assert "Final test accuracy" in out.stdout
    if name == "learning.py":
        assert "test RMSE of x -> x^2" in out.stdout
