"""Writes of parts of a base are held back and applied together
(`nengojax.ops.pending`, used by `nengojax.ops.env.StepEnv`): the same bits as
applying each at once, fewer in-place updates."""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nengojax.ops import pending as pending_module
from nengojax.ops.env import StepEnv

SIZE = 400


def _env(base):
    layout = SimpleNamespace(piecewise=frozenset())
    return StepEnv(layout, {0: base}, host={}, inputs={}, rng=None, dt=0.001)


#: parts a script writes and reads: signals side by side, some overlapping
#: (views of one another), one the whole base
PARTS = [(0, 10), (10, 30), (30, 31), (40, 90), (90, 100), (0, 30), (25, 45), (200, 260)]
PARTS += [(260, 300), (390, 400), (0, SIZE)]


def _script(seed):
    """Random sets, increments and reads of parts of one base."""
    rng = np.random.RandomState(seed)
    ops = []
    for _ in range(60):
        kind = rng.choice(["inc", "inc", "inc", "set", "set", "read", "whole"])
        if rng.rand() < 0.8:
            a, b = PARTS[rng.randint(len(PARTS))]
        else:
            a = int(rng.randint(0, SIZE - 1))
            b = int(min(SIZE, a + rng.choice([1, 3, 17, 60, 200])))
        value = rng.standard_normal(b - a).astype(np.float32)
        value[rng.rand(b - a) < 0.2] = -0.0
        ops.append((kind, a, b, value))
    return ops


def _run_env(base, ops):
    env = _env(base)
    reads = []
    for kind, a, b, value in ops:
        if kind in ("inc", "set"):
            env.write_range(0, a, b, jnp.asarray(value), inc=kind == "inc")
        elif kind == "read":
            reads.append(env.read_range(0, a, b))
        else:
            reads.append(env.read_flat(0))
    return env.final_values()[0], reads


def _run_numpy(base, ops):
    arr = np.array(base)
    reads = []
    for kind, a, b, value in ops:
        if kind == "inc":
            arr[a:b] = arr[a:b] + value
        elif kind == "set":
            arr[a:b] = value
        elif kind == "read":
            reads.append(arr[a:b].copy())
        else:
            reads.append(arr.copy())
    return arr, reads


def _bits(x):
    return np.asarray(x).view(np.uint32)


@pytest.mark.parametrize("seed", range(10))
def test_held_back_increments_give_the_bits_of_applying_each_at_once(seed):
    rng = np.random.RandomState(100 + seed)
    base = rng.standard_normal(SIZE).astype(np.float32)
    base[rng.rand(SIZE) < 0.3] = -0.0  # signed zeros between increments stay
    ops = _script(seed)
    # compiled, as a step is, with the values as arguments: in a step they are
    # computed (XLA folds constants, and would add two constant increments first)
    values = [value for *_, value in ops]
    final, reads = jax.jit(
        lambda b, vs: _run_env(b, [(*op[:3], v) for op, v in zip(ops, vs, strict=True)])
    )(base, values)
    ref_final, ref_reads = _run_numpy(base, ops)
    np.testing.assert_array_equal(_bits(final), _bits(ref_final))
    assert len(reads) == len(ref_reads)
    for got, ref in zip(reads, ref_reads, strict=True):
        np.testing.assert_array_equal(_bits(got), _bits(ref))


def _slice_updates(fn, *args) -> int:
    jaxpr = jax.make_jaxpr(fn)(*args)
    return sum(eqn.primitive.name == "dynamic_update_slice" for eqn in jaxpr.jaxpr.eqns)


def test_nearby_writes_are_one_update_and_distant_ones_apart():
    base = jnp.zeros(10_000, jnp.float32)

    def nearby(base):
        env = _env(base)
        for k in range(10):  # ten parts of 50, 10 apart
            env.write_range(0, 60 * k, 60 * k + 50, jnp.ones(50), inc=True)
        return env.read_range(0, 0, 600)

    def distant(base):
        env = _env(base)
        env.write_range(0, 0, 50, jnp.ones(50), inc=True)
        env.write_range(0, 5000, 5050, jnp.ones(50), inc=True)
        return env.read_flat(0)

    def untouched_read(base):
        env = _env(base)
        env.write_range(0, 0, 50, jnp.ones(50), inc=True)
        env.read_range(0, 50, 100)  # elsewhere: nothing applied yet
        env.write_range(0, 100, 150, jnp.ones(50), inc=True)
        return env.read_flat(0)

    def signals(base):  # nengo's order: reset, increment, read, per signal
        env = _env(base)
        for k in range(10):
            env.write_range(0, 60 * k, 60 * k + 50, jnp.zeros(50), inc=False)
        for k in range(10):  # the first applies the resets
            env.write_range(0, 60 * k, 60 * k + 50, jnp.full(50, 2.0), inc=True)
        return [env.read_range(0, 60 * k, 60 * k + 50) for k in range(10)]

    assert _slice_updates(nearby, base) == 1
    assert _slice_updates(signals, base) == 2
    for part in jax.jit(signals)(base):
        np.testing.assert_array_equal(part, np.full(50, 2, np.float32))
    assert _slice_updates(distant, base) == 2
    assert _slice_updates(untouched_read, base) == 1
    out = np.asarray(jax.jit(nearby)(base))
    expect = np.zeros(600, np.float32)
    for k in range(10):
        expect[60 * k : 60 * k + 50] = 1
    np.testing.assert_array_equal(out, expect)


def test_an_overlapping_increment_applies_those_before_it_first():
    def twice(base):
        env = _env(base)
        env.write_range(0, 0, 10, jnp.full(10, 0.1, jnp.float32), inc=True)
        env.write_range(0, 5, 15, jnp.full(10, 0.2, jnp.float32), inc=True)
        env.write_range(0, 5, 15, jnp.full(10, 0.3, jnp.float32), inc=True)
        return env.final_values()[0]

    base = np.full(20, 1e-8, np.float32)
    out = np.asarray(jax.jit(twice)(base))
    ref = base.copy()
    ref[0:10] += np.float32(0.1)
    ref[5:15] += np.float32(0.2)
    ref[5:15] += np.float32(0.3)
    np.testing.assert_array_equal(_bits(out), _bits(ref))


def test_a_whole_write_replaces_pending_increments():
    def reset(base):
        env = _env(base)
        env.write_range(0, 0, 10, jnp.ones(10), inc=True)
        env.set_flat(0, jnp.zeros(20))
        env.write_range(0, 3, 4, jnp.ones(1), inc=True)
        return env.final_values()[0]

    out = np.asarray(jax.jit(reset)(jnp.zeros(20)))
    np.testing.assert_array_equal(out, np.eye(20)[3])


def test_spread_bounds_the_copied_gap():
    parts = [pending_module._Part(a, b, None, True) for a, b in [(0, 10), (30, 40), (1000, 1010)]]
    runs = pending_module._runs(parts)
    assert [[(p.start, p.stop) for p in run] for run in runs] == [
        [(0, 10), (30, 40)],
        [(1000, 1010)],
    ]
