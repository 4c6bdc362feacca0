"""jax.numpy traced inline in nengojax's lowerings; the user's code as the user set
jit (`nengojax.ops.inline`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import nengo
import numpy as np

import nengojax
from nengojax.ops.inline import inline_jnp, is_ours, users_code


def _equations(jaxpr):
    """Every equation of ``jaxpr`` and of the jaxprs nested in it."""
    for eqn in jaxpr.eqns:
        yield eqn
        for sub in jax.core.subjaxprs(eqn) if hasattr(jax.core, "subjaxprs") else ():
            yield from _equations(sub)
        for param in eqn.params.values():
            for value in param if isinstance(param, (list, tuple)) else [param]:
                inner = getattr(value, "jaxpr", None)
                if inner is not None and hasattr(inner, "eqns"):
                    yield from _equations(inner)
                elif hasattr(value, "eqns"):
                    yield from _equations(value)


def _step_jaxpr(net):
    model = nengojax.compile(net)
    step = model.step_function("simulate")
    packed = model.packer.pack_on_host(model.init_params())
    state = model.init_state()
    host = jax.tree_util.tree_map(lambda v: v[0], model.host_inputs(state, 1))
    return jax.make_jaxpr(lambda p, s, h: step(step.prepare(p), model.packer.consts, s, h, {}))(
        packed, state, host
    ).jaxpr


def _names(jaxpr) -> list[str]:
    return [eqn.primitive.name for eqn in _equations(jaxpr)]


def test_step_has_no_nested_jit_of_its_own():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(np.sin)
        a = nengo.Ensemble(20, 2)
        b = nengo.Ensemble(20, 1)
        nengo.Connection(stim, a[0])
        nengo.Connection(a, b, function=lambda x: x[0] * x[1])
        nengo.Probe(b, synapse=0.01)
    names = _names(_step_jaxpr(net))
    assert "add" in names and "dot_general" in names  # the step is there
    assert not {"pjit", "jit"} & set(names)  # jnp.add, ravel, where, clip: inline


def test_users_jax_node_keeps_its_loop_and_jit():
    @jax.jit
    def halve(x):
        return x / 2

    def fn(x):
        # with jit off a fori_loop runs as a Python loop: 25 unrolled adds
        return halve(jax.lax.fori_loop(0, 25, lambda i, acc: acc + x, jnp.zeros_like(x)))

    with nengo.Network(seed=0) as net:
        stim = nengo.Node([0.5, -1.0])
        node = nengojax.JaxNode(fn, shape_in=2, shape_out=2, pass_time=False)
        nengo.Connection(stim, node, synapse=None)
        p = nengo.Probe(node)
    names = _names(_step_jaxpr(net))
    assert {"scan", "while"} & set(names)  # the user's loop, not unrolled
    assert {"pjit", "jit"} & set(names)  # the user's own jit
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(3)
    np.testing.assert_allclose(sim.data[p][-1], [6.25, -12.5], rtol=1e-6)


class _Twice(nengo.RectifiedLinear):
    """Twice a rectified linear neuron's rate (a user's type with its own step)."""

    def step(self, dt, J, output):
        output[...] = 2 * self.amplitude * np.maximum(0.0, J)


@nengojax.register_neuron_step(_Twice, random=False)
def _twice_step(neuron_type, dt, J, state, rng):
    out = jax.lax.fori_loop(0, 2, lambda i, acc: acc + jnp.maximum(0.0, J), jnp.zeros_like(J))
    return neuron_type.amplitude * out, state


def test_users_neuron_step_keeps_its_loop_and_gives_nengos_rates():
    with nengo.Network(seed=1) as net:
        stim = nengo.Node(0.3)
        ens = nengo.Ensemble(8, 1, neuron_type=_Twice())
        nengo.Connection(stim, ens, synapse=None)
        p = nengo.Probe(ens.neurons)
    assert {"scan", "while"} & set(_names(_step_jaxpr(net)))
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(5)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(5)
    np.testing.assert_allclose(sim.data[p], ref.data[p], rtol=1e-5, atol=1e-5)


def test_users_code_runs_as_the_user_set_jit():
    seen = []

    @users_code
    def fn():
        seen.append(jax.config.jax_disable_jit)

    fn()  # outside a step: as it is
    with inline_jnp():
        inside = jax.config.jax_disable_jit
        fn()
        after = jax.config.jax_disable_jit
    with jax.disable_jit():  # a user who turned jit off keeps it off
        with inline_jnp():
            fn()
    assert seen == [False, False, True]
    assert inside and after  # nengojax's own code: jit off around the user's call
    assert not jax.config.jax_disable_jit


def test_ours_and_users():
    from nengojax.ops.neuron_steps import lif_step

    assert is_ours(lif_step)
    assert not is_ours(_twice_step)
    assert not is_ours(lambda x: x)
