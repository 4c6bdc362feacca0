"""A multi-process job whose peer never starts ends with a SimulationError, not
an abort of the process."""

from __future__ import annotations

import socket
import subprocess
import sys

SCRIPT = """
import sys
import nengojax
from nengo.exceptions import SimulationError
try:
    nengojax.distributed.initialize(
        f"127.0.0.1:{sys.argv[1]}", num_processes=2, process_id=int(sys.argv[2]),
        initialization_timeout=3,
    )
except SimulationError as e:
    print("SIMULATIONERROR", e)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_missing_peer_is_a_simulation_error():
    for process_id, what in ((0, "did not start"), (1, "could not reach")):
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(_free_port()), str(process_id)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        assert "SIMULATIONERROR" in out.stdout and what in out.stdout, out.stdout
