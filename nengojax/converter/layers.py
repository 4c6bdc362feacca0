"""Framework-neutral layer descriptions and their translation to nengo objects.

The Equinox and Flax front ends (`nengojax.converter.equinox`,
`nengojax.converter.flax`) turn a model into a list of `LayerSpec` objects, one
per submodule, each with its per-sample input and output shapes. `build_network`
turns that list into a `nengo.Network`.
"""

from __future__ import annotations

import functools
import inspect
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import nengo
import numpy as np
from nengo.exceptions import ValidationError

from ..neurons import LeakyReLU

__all__ = ["LayerSpec", "activation_neuron_type", "build_network", "fixed_linear_matrix"]


@dataclass
class LayerSpec:
    """One converted layer.

    Parameters
    ----------
    kind : str
        ``"dense"`` (``weight`` is an ``(out, in)`` matrix), ``"conv"``
        (``conv`` is a `nengo.Convolution`), ``"fixed"`` (``weight`` is a
        constant ``(out, in)`` matrix, e.g. average pooling or a reshape),
        ``"reshape"`` (no computation), ``"act"`` (``neuron_type``) or ``"jax"``
        (``fn(params, x)`` in a `JaxNode`).
    module : object
        The source module or function (a key of `Converter.layers`).
    shape_in, shape_out : tuple
        Per-sample shapes.
    """

    kind: str
    module: Any
    shape_in: tuple
    shape_out: tuple
    weight: Any = None
    bias: Any = None
    conv: Any = None
    neuron_type: Any = None
    fn: Any = None
    params: Any = None
    label: str = ""
    extra: dict = field(default_factory=dict)


def _name(obj) -> str:
    if isinstance(obj, functools.partial):
        return f"partial({_name(obj.func)})"
    name = getattr(obj, "__name__", None)
    if name is None:
        name = type(obj).__name__
    return name


def activation_neuron_type(fn) -> nengo.neurons.NeuronType | None:
    """The nengo neuron type computing activation ``fn`` exactly, or None.

    ``jax.nn.relu`` -> `nengo.RectifiedLinear`, ``jax.nn.sigmoid`` ->
    `nengo.Sigmoid` with ``tau_ref=1`` (its rate is ``1 / tau_ref / (1 +
    exp(-J))``), ``jax.nn.tanh``/``jnp.tanh`` -> `nengo.Tanh` with ``tau_ref=1``
    (rate ``tanh(J) / tau_ref``), ``jax.nn.leaky_relu`` (optionally a
    ``functools.partial`` setting ``negative_slope``) -> `nengojax.neurons.LeakyReLU`.
    """
    slope = None
    base = fn
    if isinstance(fn, functools.partial):
        base = fn.func
        if fn.args:
            return None
        slope = fn.keywords.get("negative_slope")
    if base is jax.nn.relu:
        return nengo.RectifiedLinear() if base is fn else None
    if base is jax.nn.sigmoid:
        return nengo.Sigmoid(tau_ref=1.0) if base is fn else None
    if base is jax.nn.tanh or base is jnp.tanh:
        return nengo.Tanh(tau_ref=1.0) if base is fn else None
    if base is jax.nn.leaky_relu:
        if slope is None:
            slope = inspect.signature(jax.nn.leaky_relu).parameters["negative_slope"].default
        return LeakyReLU(negative_slope=float(slope))
    return None


def fixed_linear_matrix(fn, shape_in) -> np.ndarray | None:
    """The matrix ``M`` with ``fn(x).ravel() == M @ x.ravel()``, if ``fn`` is linear.

    Linearity is checked on two random inputs and their sum; returns None for
    non-linear ``fn``.
    """
    n = math.prod(shape_in)

    def flat(x):
        return jnp.ravel(fn(jnp.reshape(x, shape_in)))

    rng = np.random.RandomState(0)
    a, b = rng.randn(2, n).astype(np.float32)
    probes = np.stack([a, b, a + 1.5 * b])

    @jax.jit
    def jac_and_values(p):
        return jax.jacfwd(flat)(jnp.zeros(n, jnp.float32)), jax.vmap(flat)(p)

    try:
        mat, values = jac_and_values(probes)
    except Exception:  # noqa: BLE001 - fn not differentiable: not a fixed linear map
        return None
    mat = np.asarray(mat, dtype=np.float64)
    fa, fb, fab = np.asarray(values, dtype=np.float64)
    scale = 1e-4 * (1 + np.abs(fab).max())
    if mat.ndim != 2 or not (
        np.allclose(fa, mat @ a, atol=scale)
        and np.allclose(fb, mat @ b, atol=scale)
        and np.allclose(fab, fa + 1.5 * fb, atol=scale)
    ):
        return None
    return mat


def _is_identity(mat: np.ndarray) -> bool:
    return mat.shape[0] == mat.shape[1] and np.array_equal(mat, np.eye(mat.shape[0]))


def _copy_neuron_type(nt):
    """A new instance of ``nt`` (nengo neuron types are frozen)."""
    kwargs = {}
    for name in inspect.signature(type(nt).__init__).parameters:
        if name != "self" and hasattr(nt, name):
            kwargs[name] = getattr(nt, name)
    return type(nt)(**kwargs)


_HOMOGENEOUS = (nengo.RectifiedLinear, nengo.SpikingRectifiedLinear, LeakyReLU)


def build_network(
    specs: list[LayerSpec],
    input_shape: tuple,
    *,
    swap_activations: dict | None,
    scale_firing_rates: float,
    synapse,
    inference_only: bool,
    label: str,
):
    """Build the nengo network of ``specs``.

    Returns ``(net, input_node, output_probe, layer_objects)``, with
    ``layer_objects`` a list of ``(module, nengo_object)`` pairs.
    """
    import nengojax  # public names only (nengojax imports this module)

    swap = dict(swap_activations or {})
    scale = float(scale_firing_rates)
    if not scale > 0:
        raise ValidationError(
            f"Converter: scale_firing_rates must be positive (got {scale_firing_rates!r})",
            attr="scale_firing_rates",
        )
    pairs = []
    with nengo.Network(label=label) as net:
        nengojax.configure_settings(trainable=False if inference_only else None)
        if inference_only:  # JaxNode params too (configure_settings leaves them)
            net.config[nengo.Node].trainable = False
        inp = nengo.Node(np.zeros(math.prod(input_shape)), label="input")
        state = {"pre": inp, "spiking": False, "out_scale": 1.0}
        bias_node = [None]

        def bias_source():
            if bias_node[0] is None:
                bias_node[0] = nengo.Node([1.0], label="bias")
            return bias_node[0]

        def connect(post, transform, fixed=False):
            syn = synapse if state["spiking"] else None
            if fixed:
                transform = _fixed_transform(transform / state["out_scale"])
            elif state["out_scale"] != 1.0:
                if isinstance(transform, nengo.Convolution):
                    transform = nengo.Convolution(
                        n_filters=transform.n_filters,
                        input_shape=transform.input_shape.shape,
                        kernel_size=transform.kernel_size,
                        strides=transform.strides,
                        padding=transform.padding,
                        channels_last=transform.channels_last,
                        init=np.asarray(transform.init) / state["out_scale"],
                    )
                else:
                    transform = np.asarray(transform) / state["out_scale"]
            conn = nengo.Connection(state["pre"], post, transform=transform, synapse=syn)
            if fixed and not inference_only:
                net.config[conn].trainable = False
            return conn

        def set_pre(obj, spiking=False, out_scale=1.0):
            state.update(pre=obj, spiking=spiking, out_scale=out_scale)

        i = 0
        while i < len(specs):
            spec = specs[i]
            nxt = specs[i + 1] if i + 1 < len(specs) else None
            size_out = math.prod(spec.shape_out)
            if spec.kind == "reshape":
                pairs.append((spec.module, state["pre"]))
                i += 1
                continue
            if spec.kind in ("dense", "conv") and nxt is not None and nxt.kind == "act":
                # weights + activation: one ensemble, the layer bias as its bias
                obj, nt_scale = _make_ensemble(nxt, size_out, spec.bias, swap, scale)
                transform = spec.conv if spec.kind == "conv" else spec.weight
                connect(obj, transform)
                pairs.append((spec.module, obj))
                pairs.append((nxt.module, obj))
                set_pre(obj, spiking=obj.ensemble.neuron_type.spiking, out_scale=nt_scale)
                i += 2
                continue
            if spec.kind in ("dense", "conv"):
                node = nengo.Node(size_in=size_out, label=spec.label)
                connect(node, spec.conv if spec.kind == "conv" else spec.weight)
                if spec.bias is not None:
                    nengo.Connection(
                        bias_source(), node, transform=spec.bias[:, None], synapse=None
                    )
                pairs.append((spec.module, node))
                set_pre(node)
            elif spec.kind == "fixed":
                node = nengo.Node(size_in=size_out, label=spec.label)
                connect(node, spec.weight, fixed=True)
                pairs.append((spec.module, node))
                set_pre(node)
            elif spec.kind == "act":
                obj, nt_scale = _make_ensemble(spec, size_out, None, swap, scale)
                connect(obj, 1.0)
                pairs.append((spec.module, obj))
                set_pre(obj, spiking=obj.ensemble.neuron_type.spiking, out_scale=nt_scale)
            elif spec.kind == "jax":
                warnings.warn(
                    f"Converter: {spec.label} cannot be converted to nengo objects; it runs "
                    "in a nengojax.JaxNode (not spiking; in nengo.Simulator it runs as "
                    "Python code)",
                    UserWarning,
                    stacklevel=4,
                )
                node = nengojax.JaxNode(
                    spec.fn,
                    shape_in=spec.shape_in,
                    params=spec.params,
                    pass_time=False,
                    label=spec.label,
                )
                connect(node, 1.0)
                pairs.append((spec.module, node))
                set_pre(node)
            else:  # pragma: no cover - front ends only make the kinds above
                raise ValidationError(f"Converter: unknown layer kind {spec.kind!r}", attr="model")
            i += 1
        out_obj = state["pre"]
        if state["out_scale"] != 1.0 or state["spiking"]:
            # the last layer is a neuron layer: read it through an output node
            node = nengo.Node(size_in=out_obj.size_out, label="output")
            connect(node, 1.0)
            out_obj = node
        probe = nengo.Probe(out_obj, label="output")
    return net, inp, probe, pairs


def _fixed_transform(mat: np.ndarray):
    """A `nengo.Sparse` transform for a mostly-zero matrix, else the matrix."""
    nz = mat != 0
    if np.count_nonzero(nz) > mat.size // 4:
        return mat
    return nengo.Sparse(mat.shape, indices=np.argwhere(nz), init=mat[nz])


def _make_ensemble(spec, size, bias, swap, scale):
    """An ensemble for activation ``spec``; returns its ``.neurons`` and the scale
    its outgoing weights must be divided by."""
    nt = spec.neuron_type
    for key, value in swap.items():
        if (
            key is spec.module
            or key is spec.fn
            or (isinstance(key, nengo.neurons.NeuronType) and type(key) is type(nt) and key == nt)
        ):
            if not isinstance(value, nengo.neurons.NeuronType):
                raise ValidationError(
                    f"Converter: swap_activations[{_name(key)}] must be a nengo neuron type "
                    f"(got {value!r})",
                    attr="swap_activations",
                )
            nt = value
            break
    nt = _copy_neuron_type(nt)
    if scale != 1.0 and not isinstance(nt, _HOMOGENEOUS):
        warnings.warn(
            f"Converter: scale_firing_rates={scale} changes the output of "
            f"{type(nt).__name__} neurons ({spec.label}), which are not homogeneous "
            "(f(a x) != a f(x))",
            UserWarning,
            stacklevel=4,
        )
    if bias is None:
        bias_full = np.zeros(size)
    else:
        bias_full = np.asarray(bias, dtype=np.float64).reshape(-1)
    ens = nengo.Ensemble(
        size,
        1,
        neuron_type=nt,
        gain=nengo.dists.Choice([scale]),
        bias=scale * bias_full if bias is not None else nengo.dists.Choice([0.0]),
        label=spec.label,
    )
    return ens.neurons, scale


def out_shape(fn, shape_in) -> tuple:
    """The output shape of layer ``fn`` on one sample of shape ``shape_in``."""
    try:
        out = jax.eval_shape(fn, jax.ShapeDtypeStruct(shape_in, np.float32))
    except Exception as e:
        raise ValidationError(
            f"Converter: layer {fn!r} fails on one sample of shape {shape_in}: "
            f"{type(e).__name__}: {e}",
            attr="model",
        ) from e
    return tuple(out.shape)
