"""Convolution transforms (ConvInc, ConvTransposeInc) against nengo's reference."""

import itertools

import nengo
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import nengojax
from nengojax.ops import conv as conv_ops


def _outputs(transform, sim_cls, x=None, seed=0, steps=2):
    """Output of ``transform`` applied to a (time-varying) Node's output."""
    rng = np.random.RandomState(seed)
    if x is None:
        x = rng.uniform(-1, 1, (steps, transform.size_in))
    dt = 0.001
    with nengo.Network(seed=seed) as net:
        a = nengo.Node(lambda t: x[min(int(round(t / dt)) - 1, len(x) - 1)])
        b = nengo.Node(size_in=transform.size_out)
        conn = nengo.Connection(a, b, transform=transform, synapse=None)
        p = nengo.Probe(b)
    with sim_cls(net, progress_bar=False) as sim:
        sim.run_steps(len(x))
        return sim.data[p], sim.data[conn].weights


def _assert_matches_nengo(transform, **kwargs):
    ref, w_ref = _outputs(transform, nengo.Simulator, **kwargs)
    got, w = _outputs(transform, nengojax.Simulator, **kwargs)
    np.testing.assert_allclose(w, w_ref)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-5 * max(1.0, np.abs(ref).max()))


def _shape(spatial, channels, channels_last):
    return tuple(spatial) + (channels,) if channels_last else (channels,) + tuple(spatial)


CASES = [
    # (spatial, kernel, strides, padding)
    ((7,), (3,), (1,), "valid"),
    ((7,), (3,), (2,), "same"),
    ((8,), (2,), (3,), "valid"),
    ((8,), (1,), (2,), "same"),
    ((7,), (4,), (1,), "same"),
    ((6, 5), (3, 3), (1, 1), "valid"),
    ((6, 5), (3, 3), (1, 1), "same"),
    ((6, 5), (2, 3), (2, 1), "same"),
    ((7, 6), (3, 2), (2, 3), "valid"),
    ((5, 5), (1, 1), (2, 2), "same"),
    ((4, 6), (4, 2), (3, 2), "same"),
]


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("spatial, kernel, strides, padding", CASES)
def test_convolution(spatial, kernel, strides, padding, channels_last):
    t = nengo.Convolution(
        4,
        _shape(spatial, 3, channels_last),
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        channels_last=channels_last,
    )
    _assert_matches_nengo(t)


@pytest.mark.parametrize("lowering", ["patches", "library"])
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("spatial, kernel, strides, padding", CASES)
def test_both_lowerings_match_nengo(
    spatial, kernel, strides, padding, channels_last, lowering, monkeypatch
):
    """Thin convolutions multiply gathered patches, others use XLA's
    convolution; each lowering, forced on every case, gives nengo's output."""
    monkeypatch.setattr(conv_ops, "MAX_PATCH_TERMS", 10**6 if lowering == "patches" else 0)
    t = nengo.Convolution(
        2,
        _shape(spatial, 1 if lowering == "patches" else 2, channels_last),
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        channels_last=channels_last,
    )
    _assert_matches_nengo(t)


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("spatial, kernel, strides, padding", CASES)
def test_convolution_transpose(spatial, kernel, strides, padding, channels_last):
    # the transpose of a forward convolution from ``spatial``, given explicitly,
    # which is not always the default (smallest) output shape when strides > 1
    kwargs = dict(
        kernel_size=kernel, strides=strides, padding=padding, channels_last=channels_last
    )
    out_shape = _shape(spatial, 2, channels_last)
    fwd = nengo.Convolution(3, out_shape, **kwargs)
    t = nengo.ConvolutionTranspose(2, fwd.output_shape, output_shape=out_shape, **kwargs)
    _assert_matches_nengo(t)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_convolution_transpose_default_output_shape(padding):
    t = nengo.ConvolutionTranspose(
        2, (3, 4, 3), kernel_size=(3, 2), strides=(2, 3), padding=padding
    )
    _assert_matches_nengo(t)


@pytest.mark.parametrize(
    "groups, n_filters, channels_last", [(2, 4, True), (4, 8, False), (4, 4, True)]
)
def test_convolution_groups(groups, n_filters, channels_last):
    t = nengo.Convolution(
        n_filters,
        _shape((5, 6), 4, channels_last),
        kernel_size=(3, 3),
        strides=(2, 1),
        padding="same",
        channels_last=channels_last,
        groups=groups,
    )
    _assert_matches_nengo(t)


def test_convolution_groups_1d():
    t = nengo.Convolution(6, (9, 3), kernel_size=(3,), strides=(2,), groups=3)
    _assert_matches_nengo(t)


def test_convolution_init_array():
    rng = np.random.RandomState(1)
    kernel = rng.uniform(-1, 1, (2, 3, 3, 5))
    t = nengo.Convolution(
        5, (3, 6, 7), kernel_size=(2, 3), init=kernel, channels_last=False, padding="same"
    )
    _assert_matches_nengo(t)
    kernel = rng.uniform(-1, 1, (3, 2, 4))
    t = nengo.ConvolutionTranspose(4, (5, 2), kernel_size=(3,), strides=(2,), init=kernel)
    _assert_matches_nengo(t)


def test_convolution_between_ensembles():
    """A convolution on neuron activities into neurons, with synapses."""
    t = nengo.Convolution(2, (4, 4, 2), kernel_size=(2, 2), strides=(2, 2), padding="same")
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(lambda t: np.sin(np.arange(32) + 10 * t))
        a = nengo.Ensemble(32, 1, neuron_type=nengo.RectifiedLinear())
        b = nengo.Ensemble(t.size_out, 1, neuron_type=nengo.RectifiedLinear())
        nengo.Connection(stim, a.neurons)
        nengo.Connection(a.neurons, b.neurons, transform=t)
        p = nengo.Probe(b.neurons, synapse=0.01)
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(0.05)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run(0.05)
    scale = np.abs(ref.data[p]).max()
    assert scale > 0
    np.testing.assert_allclose(sim.data[p], ref.data[p], atol=1e-4 * scale)


# --- beyond nengo's reference simulator: three spatial dimensions ----------------------


def _reference_conv3d(x, w, strides, padding):
    """Brute-force channels-last correlation with nengo's padding convention."""
    spatial, ksize = x.shape[:-1], w.shape[:3]
    if padding == "same":
        pads = []
        for h, k, s in zip(spatial, ksize, strides, strict=True):
            out = -(-h // s)
            p = max((out - 1) * s + k - h, 0)
            pads.append((p // 2, p - p // 2))
        x = np.pad(x, pads + [(0, 0)])
    win = sliding_window_view(x, ksize, axis=(0, 1, 2))  # (o1, o2, o3, C, k1, k2, k3)
    win = win[:: strides[0], :: strides[1], :: strides[2]]
    return np.einsum("abcijkl,jklim->abcm", win, w)


@pytest.mark.parametrize("padding, strides", [("valid", (1, 2, 1)), ("same", (2, 1, 3))])
def test_convolution_3d(padding, strides):
    rng = np.random.RandomState(2)
    t = nengo.Convolution(3, (5, 4, 6, 2), kernel_size=(3, 2, 3), strides=strides, padding=padding)
    x = rng.uniform(-1, 1, (1, t.size_in))
    got, w = _outputs(t, nengojax.Simulator, x=x)
    ref = _reference_conv3d(x[0].reshape(t.input_shape.shape), w, strides, padding)
    assert ref.shape == t.output_shape.shape
    np.testing.assert_allclose(got[0], ref.ravel(), atol=1e-5)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_convolution_transpose_3d_is_adjoint(padding):
    """<conv(x), y> == <x, conv_transpose(y)> with the kernel's channel axes swapped."""
    rng = np.random.RandomState(4)
    kwargs = dict(kernel_size=(2, 3, 2), strides=(2, 1, 2), padding=padding)
    kernel = rng.uniform(-1, 1, (2, 3, 2, 2, 3))
    fwd = nengo.Convolution(3, (5, 4, 4, 2), init=kernel, **kwargs)
    bwd = nengo.ConvolutionTranspose(
        2,
        fwd.output_shape,
        output_shape=fwd.input_shape,
        init=np.swapaxes(kernel, -1, -2),
        **kwargs,
    )
    x = rng.uniform(-1, 1, (1, fwd.size_in))
    y = rng.uniform(-1, 1, (1, fwd.size_out))
    fx, _ = _outputs(fwd, nengojax.Simulator, x=x)
    by, _ = _outputs(bwd, nengojax.Simulator, x=y)
    np.testing.assert_allclose(np.dot(fx[0], y[0]), np.dot(x[0], by[0]), rtol=1e-5)


def test_cases_cover_options():
    """The parametrized cases exercise 1-D and 2-D, both paddings and strides > 1."""
    combos = {(len(s), p, max(st) > 1) for s, _, st, p in CASES}
    assert combos >= set(itertools.product([1, 2], ["same", "valid"], [False, True]))


@pytest.mark.parametrize("lowering", ["patches", "library"])
def test_minibatch_items_equal_single_runs(lowering, monkeypatch):
    """Each item of a minibatch given its own input matches a run of that input
    alone (the patches gathered per item under vmap)."""
    monkeypatch.setattr(conv_ops, "MAX_PATCH_TERMS", 10**6 if lowering == "patches" else 0)
    t = nengo.Convolution(3, (6, 5, 1), kernel_size=(3, 3), strides=(2, 1), padding="same")
    with nengo.Network(seed=0) as net:
        a = nengo.Node(np.zeros(t.size_in))
        b = nengo.Node(size_in=t.size_out)
        nengo.Connection(a, b, transform=t, synapse=None)
        p = nengo.Probe(b)
    x = np.random.RandomState(1).uniform(-1, 1, (3, 4, t.size_in))
    with nengojax.Simulator(net, minibatch_size=3, progress_bar=False) as sim:
        sim.run_steps(4, data={a: x})
        batched = sim.data[p]
    for item in range(3):
        with nengojax.Simulator(net, progress_bar=False) as sim:
            sim.run_steps(4, data={a: x[item : item + 1]})
            np.testing.assert_allclose(batched[item], sim.data[p], rtol=1e-6, atol=1e-6)
