"""Peer mode: time NengoDL 3.6 on the benchmark networks, in NengoDL's own venv.

Never needed by CI. Build the venv as ``../shared/reference/README.md`` says
(TensorFlow 2.12, nengo 3.2, nengo-dl 3.6), then::

    python benchmarks/run.py --peer-venv PATH/TO/venv-nengodl [--quick]

which runs this script with that venv's python for every network and adds
NengoDL's steps/s (minibatch 1) and item-steps/s (minibatch 32) to the table.
It can also run by hand: ``venv/bin/python benchmarks/peer_nengodl.py NETWORK``.
"""

import json
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(name, quick, n_steps, batch, reps, kwargs):
    import nengo
    import nengo_dl

    from benchmarks.networks import NETWORKS

    warnings.simplefilter("ignore")
    nengo.rc.set("decoder_cache", "enabled", "False")
    net, _, _ = NETWORKS[name](nengo.LIF(), **kwargs)
    out = {}
    for mb in (1, batch):
        t0 = time.perf_counter()
        sim = nengo_dl.Simulator(net, minibatch_size=mb, progress_bar=False)
        build = time.perf_counter() - t0
        with sim:
            t0 = time.perf_counter()
            sim.run_steps(n_steps)
            first = time.perf_counter() - t0
            times = []
            for _ in range(reps):
                sim.reset()
                t0 = time.perf_counter()
                sim.run_steps(n_steps)
                times.append(time.perf_counter() - t0)
        out[f"mb{mb}"] = {
            "build_s": build,
            "first_run_s": first,
            "item_steps_per_s": mb * n_steps / min(times),
        }
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    args = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    main(
        sys.argv[1],
        args.get("quick", False),
        args.get("n_steps", 1000),
        args.get("batch", 32),
        args.get("reps", 3),
        args.get("kwargs", {}),
    )
