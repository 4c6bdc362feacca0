"""Bad input to the functional API gets a ValidationError naming what is wrong."""

from __future__ import annotations

import nengo
import numpy as np
import pytest
from nengo.exceptions import ValidationError

import nengojax


@pytest.fixture(scope="module")
def model():
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.sin)
        ens = nengo.Ensemble(10, 1)
        post = nengo.Ensemble(10, 1)
        nengo.Connection(inp, ens)
        learned = nengo.Connection(ens, post, learning_rule_type=nengo.PES())
        nengo.Connection(post, learned.learning_rule)
        nengo.Probe(post)
    compiled = nengojax.compile(net)
    return compiled, inp, ens, learned


def test_key_resolves_like_sim_data(model):
    compiled, inp, ens, learned = model
    assert compiled.key(ens, "bias") == compiled.key(ens.neurons, "bias")
    assert compiled.key(ens, "bias") in compiled.init_params()
    with pytest.raises(ValidationError, match="gain is not a param"):
        compiled.key(ens, "gain")
    with pytest.raises(ValidationError, match="simulation state"):
        compiled.key(learned, "weights")
    with pytest.raises(ValidationError, match="no param 'bais'"):
        compiled.key(ens.neurons, "bais")


def test_run_rejects_bad_params(model):
    compiled, inp, ens, _ = model
    params, state = compiled.init_params(), compiled.init_state()
    key = compiled.key(ens, "bias")
    with pytest.raises(ValidationError, match="unknown keys"):
        compiled.run({**params, key + "x": params[key]}, state, 5)
    missing = {k: v for k, v in params.items() if k != key}
    with pytest.raises(ValidationError, match="missing keys"):
        compiled.run(missing, state, 5)
    with pytest.raises(ValidationError, match=f"params\\[{key!r}\\]: expected shape"):
        compiled.run({**params, key: params[key][:3]}, state, 5)


def test_run_rejects_bad_state_and_steps(model):
    compiled, _, _, _ = model
    params, state = compiled.init_params(), compiled.init_state()
    with nengo.Network(seed=1) as other:
        nengo.Ensemble(7, 1)
    foreign = nengojax.compile(other).init_state()
    with pytest.raises(ValidationError, match="does not come from this network"):
        compiled.run(params, foreign, 5)
    with pytest.raises(ValidationError, match="state must be a dict"):
        compiled.run(params, {"signals": {}}, 5)
    for bad in (-3, 2.5, True):
        with pytest.raises(ValidationError, match="n_steps"):
            compiled.run(params, state, bad)
    out_state, probes = compiled.run(params, state, 5)  # good input still runs
    assert all(v.shape[0] == 5 for v in probes.values())
