"""Kernel budget of a compiled network: what XLA runs per simulation step.

``kernel_budget(model, minibatch_size)`` lowers and compiles the jitted run
(``jax.jit(lambda p, s: model.run(p, s, n)).lower(params, state).compile()``),
finds the while loop of the time scan in the optimized HLO text and counts,
per step, the instructions of its body and the kernels a device would launch:
fusions, plus the ops XLA left outside fusions (custom-calls, dots and
convolutions, copies, dynamic(-update)-slices, gathers/scatters, reduces, ...).
``count_scan_body(hlo_text)`` does the counting on any HLO module text.

The counts come from the backend JAX compiles for. On a CPU they are a proxy
for a GPU: the GPU pipeline fuses differently (it fuses reductions and
producers of dots more aggressively and may unroll short loops), so treat CPU
figures as the order of magnitude. ``unoptimized=True`` counts the body before
XLA's passes (one op per primitive), an upper bound on any backend.

Usage: ``python benchmarks/hlo.py [--only pes,cconv] [--minibatch 1,32]``
prints the counts of the benchmark networks.
"""

from __future__ import annotations

import json
import re
from collections import Counter

# ops that move no data and launch nothing (aliases, bookkeeping, literals)
FREE_OPS = frozenset(
    {
        "parameter",
        "constant",
        "get-tuple-element",
        "tuple",
        "bitcast",
        "after-all",
        "add-dependency",
        "opt-barrier",
        "partition-id",
        "replica-id",
        "iota",  # usually folded into its consumers; counted as an op, not a kernel
    }
)
# ops that call other computations (their callees are counted, not the call itself)
CONTROL_OPS = frozenset({"while", "call", "conditional"})
KERNEL_KINDS = (
    "fusion",
    "custom-call",
    "dot",
    "convolution",
    "copy",
    "dynamic-update-slice",
    "dynamic-slice",
    "gather",
    "scatter",
    "reduce",
    "sort",
)

_HEADER = re.compile(r"^(ENTRY\s+)?%?([^\s(={]+)\s*(\(.*)?\{\s*$")
_INSTR = re.compile(r"^\s*(ROOT\s+)?%?([^\s=]+)\s*=\s*(.*)$")
_OPCODE = re.compile(r"(?:^|[\s)}\]])([a-z][a-z0-9_\-]*)\(")
_CALLEE_ATTRS = ("to_apply", "branch_computations", "true_computation", "false_computation")
_TRIP = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')


def _attr(rest: str, name: str) -> list[str]:
    """Computation names an instruction refers to through attribute ``name``."""
    m = re.search(name + r"=\{([^}]*)\}", rest)
    if m:
        return [s.strip().lstrip("%") for s in m.group(1).split(",") if s.strip()]
    m = re.search(name + r"=%?([\w.\-]+)", rest)
    return [m.group(1)] if m else []


def parse_hlo(text: str) -> tuple[dict[str, list[dict]], str | None]:
    """Split HLO module text into computations of instructions.

    Parameters
    ----------
    text : str
        HLO module text (``Compiled.as_text()`` or ``Lowered.as_text("hlo")``).

    Returns
    -------
    computations : dict
        Computation name -> list of instructions, each a dict with ``name``,
        ``opcode`` and ``rest`` (the text after ``=``).
    entry : str or None
        The name of the ENTRY computation.
    """
    comps: dict[str, list[dict]] = {}
    entry = None
    current = None
    for line in text.splitlines():
        if current is None:
            m = _HEADER.match(line)
            if m and "=" not in line.split("(", 1)[0]:
                current = m.group(2)
                comps[current] = []
                if m.group(1):
                    entry = current
            continue
        if line.strip() == "}":
            current = None
            continue
        m = _INSTR.match(line)
        if not m:
            continue
        rest = m.group(3)
        rest_noattr = re.sub(r"/\*.*?\*/", "", rest)
        op = _OPCODE.search(rest_noattr)
        comps[current].append(
            {"name": m.group(2), "opcode": op.group(1) if op else "?", "rest": rest}
        )
    return comps, entry


def _trip_count(instr: dict) -> int | None:
    m = _TRIP.search(instr["rest"])
    return int(m.group(1)) if m else None


def _whiles(comps, name, seen=None):
    """While instructions reachable from computation ``name`` (outside fusions)."""
    seen = set() if seen is None else seen
    if name in seen or name not in comps:
        return []
    seen.add(name)
    found = []
    for ins in comps[name]:
        if ins["opcode"] == "while":
            found.append(ins)
            found += _whiles(comps, _attr(ins["rest"], "body")[0], seen)
        elif ins["opcode"] in ("call", "conditional"):
            for attr in _CALLEE_ATTRS:
                for callee in _attr(ins["rest"], attr):
                    found += _whiles(comps, callee, seen)
    return found


def _count(comps, name, counts, mult):
    """Add the instructions and kernels of computation ``name`` (run ``mult`` times)."""
    for ins in comps.get(name, []):
        op = ins["opcode"]
        counts["instructions"] += mult
        if op in CONTROL_OPS:
            if op == "while":
                trip = _trip_count(ins) or 1
                _count(comps, _attr(ins["rest"], "body")[0], counts, mult * trip)
                _count(comps, _attr(ins["rest"], "condition")[0], counts, mult * (trip + 1))
            elif op == "call":
                _count(comps, _attr(ins["rest"], "to_apply")[0], counts, mult)
            else:  # conditional: the costlier branch
                branches = [c for a in _CALLEE_ATTRS[1:] for c in _attr(ins["rest"], a)]
                best = None
                for b in branches:
                    sub = Counter()
                    _count(comps, b, sub, mult)
                    if best is None or sub["kernels"] > best["kernels"]:
                        best = sub
                counts.update(best or {})
            continue
        if op in FREE_OPS or op.endswith("-done"):
            continue
        counts["ops"] += mult
        counts["kernels"] += mult
        kind = op[: -len("-start")] if op.endswith("-start") else op
        counts["kernel:" + (kind if kind in KERNEL_KINDS else "other")] += mult
        if op == "fusion":
            counts["fusions"] += mult


def count_scan_body(text: str, n_steps: int | None = None) -> dict:
    """Per-step instruction and kernel counts of the time scan in HLO text.

    The time scan is the while loop whose known trip count equals ``n_steps``
    (or divides it, for an unrolled scan), else the one with the largest trip
    count. Its body is counted once per iteration and its condition once per
    iteration; loops nested in the body count ``trip count`` times.

    Parameters
    ----------
    text : str
        HLO module text.
    n_steps : int, optional
        The number of steps the module runs.

    Returns
    -------
    dict
        ``instructions`` (every HLO instruction in the body, free ones included),
        ``ops`` (instructions that compute or move data), ``fusions``,
        ``kernels`` (fusions plus unfused compute/data-movement ops: a device's
        launches per step), ``by_kind`` (kernels by opcode), ``condition_kernels``
        (the loop test, a launch and on GPU a device-to-host sync per step),
        ``trip_count``, ``steps_per_iteration`` and ``unrolled``. Counts are
        per step. A module with no loop left (the scan fully unrolled) counts
        its entry computation divided by ``n_steps``.

    Raises
    ------
    ValueError
        If the text holds no while loop and ``n_steps`` is not given.
    """
    comps, entry = parse_hlo(text)
    whiles = _whiles(comps, entry) if entry else []
    if not whiles and entry and n_steps:
        # the compiler unrolled the whole scan (a GPU pipeline may, for short
        # loops): the entry computation holds every step
        total = Counter()
        _count(comps, entry, total, 1)
        out = {k: total[k] / n_steps for k in ("instructions", "ops", "fusions", "kernels")}
        kinds = sorted(k for k in total if k.startswith("kernel:"))
        out["by_kind"] = {k.split(":", 1)[1]: total[k] / n_steps for k in kinds}
        out.update(condition_kernels=0.0, trip_count=None, steps_per_iteration=n_steps)
        out["unrolled"] = True
        return out
    if not whiles:
        raise ValueError("no while loop (time scan) found in the HLO text")
    trips = [(_trip_count(w) or 0) for w in whiles]
    pick = None
    if n_steps:
        pick = next((w for w, t in zip(whiles, trips, strict=True) if t == n_steps), None)
        if pick is None:
            divides = (w for w, t in zip(whiles, trips, strict=True) if t > 1 and n_steps % t == 0)
            pick = next(divides, None)
    if pick is None:
        pick = whiles[max(range(len(whiles)), key=lambda i: trips[i])]
    trip = _trip_count(pick)
    per_iter = n_steps // trip if (n_steps and trip and n_steps % trip == 0) else 1
    body = Counter()
    _count(comps, _attr(pick["rest"], "body")[0], body, 1)
    cond = Counter()
    _count(comps, _attr(pick["rest"], "condition")[0], cond, 1)
    out = {k: body[k] / per_iter for k in ("instructions", "ops", "fusions", "kernels")}
    kinds = sorted(k for k in body if k.startswith("kernel:"))
    out["by_kind"] = {k.split(":", 1)[1]: body[k] / per_iter for k in kinds}
    out["condition_kernels"] = cond["kernels"] / per_iter
    out["trip_count"] = trip
    out["steps_per_iteration"] = per_iter
    out["unrolled"] = per_iter > 1
    return out


def kernel_budget(model, minibatch_size: int | None = None, n_steps: int = 100,
                  unoptimized: bool = False) -> dict:  # fmt: skip
    """Per-step HLO counts of ``model.run`` as compiled for the default JAX backend.

    Parameters
    ----------
    model : nengojax.CompiledNetwork
        From ``nengojax.compile(net)``.
    minibatch_size : int, optional
        Passed to ``model.init_state``; None for an unbatched state.
    n_steps : int
        Steps in the compiled run (the scan's trip count). Keep it above XLA's
        unrolling threshold for short loops (a few steps).
    unoptimized : bool
        Count the HLO before XLA's optimization passes instead (no fusions).

    Returns
    -------
    dict
        As `count_scan_body`, plus ``backend`` and ``minibatch_size``.
    """
    import jax

    params = model.init_params()
    state = model.init_state(minibatch_size=minibatch_size)
    lowered = jax.jit(lambda p, s: model.run(p, s, n_steps)).lower(params, state)
    text = lowered.as_text(dialect="hlo") if unoptimized else lowered.compile().as_text()
    out = count_scan_body(text, n_steps)
    out["backend"] = jax.default_backend()
    out["minibatch_size"] = minibatch_size
    out["unoptimized"] = unoptimized
    return out


def bytes_per_step(model, minibatch_size: int | None = None) -> int:
    """Params and state read plus state written per step of ``model.run``.

    Parameters
    ----------
    model : nengojax.CompiledNetwork
        From ``nengojax.compile(net)``.
    minibatch_size : int, optional
        Passed to ``model.init_state``.

    Returns
    -------
    int
        ``params + 2 x state`` bytes (the step's minimum memory traffic when
        nothing stays in cache between steps).
    """
    import jax

    def nbytes(tree):
        return int(sum(getattr(x, "nbytes", 0) for x in jax.tree_util.tree_leaves(tree)))

    return nbytes(model.init_params()) + 2 * nbytes(model.init_state(minibatch_size))


# the model of docs/performance.rst: t_step = kernels x launch + bytes / bandwidth
H200_BANDWIDTH = 4.8e12
LAUNCH_S = (5e-6, 2e-6)


def predict_steps_per_s(kernels: float, nbytes: float, bandwidth: float = H200_BANDWIDTH):
    """Steps/s the launch + bandwidth model predicts (at 5 us and at 2 us per launch).

    Parameters
    ----------
    kernels : float
        Kernels per step (the loop test included).
    nbytes : float
        Bytes that cross memory per step.
    bandwidth : float
        Memory bandwidth in bytes/s (default: H200 HBM, 4.8 TB/s).

    Returns
    -------
    tuple of float
        (slow, fast) steps/s.
    """
    return tuple(1.0 / (kernels * t + nbytes / bandwidth) for t in LAUNCH_S)


KERNELS_NOTE = """
Counts per step of the time scan (`benchmarks/hlo.py`: `jax.jit(lambda p, s:
model.run(p, s, 100)).lower(params, state).compile().as_text()`, the while
loop's body). *HLO ops*: every instruction in the body; *kernels*: fusions plus
the ops XLA left unfused (copies, dots, dynamic-update-slices, custom-calls, ...),
i.e. the launches a GPU would make, plus 1 for the loop test; *unoptimized*: ops
in the body before XLA's passes (one per primitive; what a backend that fused
nothing would launch). bytes/step = params + state read + state written.
Predicted H200 steps/s = 1 / (kernels x 5..2 us + bytes / 4.8 TB/s)
(docs/performance.rst).

These are **CPU** counts (XLA's CPU pipeline, the only backend here): a proxy
for a GPU's. XLA's GPU pipeline fuses differently (multi-output and
reduction fusions, dots as cuBLAS/Triton calls that small dots on the CPU fuse
into loops, short loops unrolled, copies of loop state elided or not), so GPU
counts can differ in either direction; `bash benchmarks/device_check.sh`
records the real GPU counts in results/gpu.md. "Before": the counts of `kernels_before.json`
(before the work on issue 14's budget); "now": this run.
"""


def markdown(results: dict, info: dict, before: dict | None = None) -> str:
    """The kernels.md page from `main`'s results.

    Parameters
    ----------
    results : dict
        Network name -> minibatch size -> counts (`kernel_budget`, plus
        ``unoptimized_ops``, ``bytes_per_step`` and ``predicted_h200_steps_per_s``).
    info : dict
        ``date``, ``jax`` and ``backend``.
    before : dict, optional
        Earlier results of the same form (the "before" columns; JSON keys).

    Returns
    -------
    str
        Markdown text.
    """
    before = before or {}
    lines = [
        "# Kernel budget per step (issue 14)",
        "",
        f"Measured {info['date']} on JAX {info['jax']} ({info['backend']} backend), "
        "networks of `benchmarks/networks.py` at their full sizes, LIF neurons.",
        KERNELS_NOTE,
        "| network | mb | fusions/step before | fusions/step now | kernels/step before "
        "| kernels/step now | HLO ops/step now | unoptimized ops/step | bytes/step "
        "| predicted H200 steps/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, per_mb in results.items():
        for mb, r in per_mb.items():
            slow, fast = r["predicted_h200_steps_per_s"]
            old = before.get(name, {}).get(str(mb))
            old_f = f"{old['fusions']:.0f}" if old else "-"
            old_k = f"{old['kernels'] + old['condition_kernels']:.0f}" if old else "-"
            lines.append(
                f"| {name} | {mb} | {old_f} | {r['fusions']:.0f} | {old_k} | "
                f"{r['kernels'] + r['condition_kernels']:.0f} | {r['instructions']:.0f} | "
                f"{r['unoptimized_ops']:.0f} | {r['bytes_per_step'] / 1e3:.1f} kB | "
                f"{slow:,.0f}-{fast:,.0f} |"
            )
    lines += ["", "Unfused kernels by kind (minibatch 1):", ""]
    for name, per_mb in results.items():
        r = next(iter(per_mb.values()))
        kinds = ", ".join(f"{k} {v:.0f}" for k, v in r["by_kind"].items())
        lines.append(f"- {name}: {kinds}")
    over = [n for n, per_mb in results.items() if any(r["fusions"] > 30 for r in per_mb.values())]
    if over:
        lines += ["", "Over the budget of 30 fusions per step, and why:", ""]
        for name in over:
            lines.append(f"- {name}: {OVER_BUDGET.get(name, 'not yet explained')}")
    return "\n".join(lines) + "\n"


#: Why a benchmark network needs more than 30 fusions per step (issue 14).
OVER_BUDGET = {
    "cconv": (
        "at minibatch 32 only (26 fusions and 1 dot at minibatch 1): XLA's CPU "
        "pipeline emits the batched products of the Fourier transforms as loop "
        "fusions rather than dot calls."
    ),
    "random_network": (
        "32 ensembles joined by 124 random decoded connections. nengo's merger "
        "merges the products into 9 block-sparse ones, but each connection's "
        "synapse input is its own signal, copied from the decoded output: 35 "
        "Copy operators between 39 separate state arrays, which no merge joins "
        "(their sources and targets are not neighbouring views of one base). "
        "Each copy is a fusion; the cure is a layout that places every "
        "connection's signals by connection order (not done)."
    ),
    "basal_ganglia": (
        "nengo's basal ganglia: 5 populations of 32 ensembles joined by "
        "connections with different functions and transforms (17 block-sparse "
        "products and 17 copies that do not merge, 6 neuron groups of "
        "different parameters), as in random_network."
    ),
    "spa_states": (
        "four nengo_spa State modules and their cleanup products: 9 "
        "block-sparse products, 10 copies and 4 neuron groups that nengo's "
        "merger leaves apart, as in random_network."
    ),
}


def main():
    import argparse
    import datetime
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.dirname(here))
    import jax
    import nengo

    import nengojax
    from benchmarks.networks import NETWORKS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None)
    parser.add_argument("--minibatch", default="1,32")
    parser.add_argument("--json", default=None, help="write the counts here")
    parser.add_argument("--markdown", default=None, help="write the kernels.md table here")
    parser.add_argument("--before", default=None, help="JSON of earlier counts to compare")
    args = parser.parse_args()
    nengo.rc.set("decoder_cache", "enabled", "False")
    names = args.only.split(",") if args.only else list(NETWORKS)
    results = {}
    for name in names:
        net, _, _ = NETWORKS[name](nengo.LIF())
        model = nengojax.compile(net)
        results[name] = {}
        for mb in (int(m) for m in args.minibatch.split(",")):
            batch = None if mb == 1 else mb
            res = kernel_budget(model, batch)
            res["unoptimized_ops"] = kernel_budget(model, batch, unoptimized=True)["ops"]
            res["bytes_per_step"] = bytes_per_step(model, batch)
            res["predicted_h200_steps_per_s"] = predict_steps_per_s(
                res["kernels"] + res["condition_kernels"], res["bytes_per_step"]
            )
            results[name][mb] = res
            print(
                f"{name:16s} mb{mb:<3d} instr {res['instructions']:6.0f}  ops {res['ops']:5.0f}"
                f"  fusions {res['fusions']:5.0f}  kernels {res['kernels']:5.0f}"
                f"  unoptimized ops {res['unoptimized_ops']:6.0f}"
                f"  bytes {res['bytes_per_step']:10d}  {res['by_kind']}",
                flush=True,
            )
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "results": results}, f, indent=1)
    if args.markdown:
        before = None
        if args.before:
            with open(args.before) as f:
                before = json.load(f)["results"]
        with open(args.markdown, "w") as f:
            f.write(markdown(results, info, before))


if __name__ == "__main__":
    main()
