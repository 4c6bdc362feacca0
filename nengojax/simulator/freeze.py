"""Trained values back into nengo: ``sim.data``, ``get_nengo_params``, ``freeze_params``.

After training, ``sim.data[ens]`` shows the trained encoders and biases, and
`freeze_params` writes the trained values into the nengo objects, so that
``nengo.Simulator`` (or a new nengojax Simulator) builds the trained model.
"""

from __future__ import annotations

import nengo
import numpy as np
from nengo.builder.ensemble import BuiltEnsemble
from nengo.exceptions import ValidationError
from nengo.solvers import NoSolver

from .. import distributed
from .data import check_open


class ZeroFunction:
    """A connection function returning zeros (fixes ``size_mid`` for NoSolver)."""

    def __init__(self, size):
        self.size = int(size)

    def __call__(self, x):
        return np.zeros(self.size)

    def __repr__(self):
        return f"ZeroFunction({self.size})"


def param_value(sim, obj, attr):
    key = sim.compiled.program.param_key(obj, attr)
    if key not in sim.params:
        return None
    return np.asarray(distributed.to_host(sim.params[key]), dtype=np.float64)


def trained_ensemble(sim, ens):
    """(encoders, gain, bias, scaled_encoders) of ``ens`` with current params."""
    built = sim.model.params[ens]
    gain = np.asarray(built.gain, dtype=np.float64)
    scaled = param_value(sim, ens, "encoders")
    bias = param_value(sim, ens.neurons, "bias")
    if scaled is None:
        scaled = np.asarray(built.scaled_encoders, dtype=np.float64)
    if bias is None:
        bias = np.asarray(built.bias, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        encoders = scaled * (ens.radius / gain)[:, None]
    encoders = np.where(np.isfinite(encoders), encoders, built.encoders)
    return encoders, gain, bias, scaled


def built_data(sim, key):
    """``sim.data[key]``: nengo's built object, with trained values if any."""
    built = sim.model.params[key]
    try:
        if isinstance(key, nengo.Ensemble) and isinstance(built, BuiltEnsemble):
            if built.scaled_encoders is None or sim.closed:
                return built
            dtype = sim.compiled.float_dtype
            enc_k = sim.compiled.program.key(key, "encoders")
            bias_k = sim.compiled.program.key(key.neurons, "bias")
            same = all(
                k not in sim.params
                or np.array_equal(distributed.to_host(sim.params[k]), np.asarray(ref, dtype))
                for k, ref in ((enc_k, built.scaled_encoders), (bias_k, built.bias))
            )
            if same:
                return built
            encoders, _, bias, scaled = trained_ensemble(sim, key)
            return built._replace(encoders=encoders, bias=bias, scaled_encoders=scaled)
        if isinstance(key, nengo.Connection) and built is not None:
            w_k = sim.compiled.program.param_key(key, "weights")
            if w_k not in sim.params or built.weights is None or sim.closed:
                return built
            ref = np.asarray(built.weights, sim.compiled.float_dtype)
            value = distributed.to_host(sim.params[w_k])
            if value.shape == ref.shape and np.array_equal(value, ref):
                return built
            return built._replace(weights=value.astype(np.float64))
    except ValidationError:
        return built
    return built


def objects(sim, objs):
    if objs is None:
        objs = sim.compiled.program.toplevel
    if isinstance(objs, nengo.Network):
        net = objs
        return [*net.all_ensembles, *net.all_connections, *net.all_nodes]
    if isinstance(objs, (list, tuple, set)):
        out = []
        for o in objs:
            out.extend(objects(sim, o) if isinstance(o, nengo.Network) else [o])
        return out
    return [objs]


def get_nengo_params(sim, objs, as_dict: bool = False):
    """Constructor arguments reproducing the current (trained) parameters.

    For an Ensemble: ``encoders``, ``gain``, ``bias`` and
    ``normalize_encoders=False`` (nengo builds ``scaled_encoders =
    encoders * gain / radius``; the gains stay the built ones, the trained
    scaled encoders and biases are split accordingly). For a Connection
    from an Ensemble: ``solver=NoSolver(weights.T)``, ``transform=None``
    and a ``function`` of the right output size; from a Node or Neurons:
    ``transform=weights``. For a `nengojax.JaxNode`: ``params``.

    Parameters
    ----------
    objs : nengo object or list
        Ensembles, Connections and JaxNodes.
    as_dict : bool
        Return ``{obj: kwargs}`` instead of a list (or a single dict for a
        single object).

    Returns
    -------
    dict, list of dict, or dict of dict
    """
    check_open(sim)
    single = not isinstance(objs, (list, tuple, set, nengo.Network))
    objs = objects(sim, objs)
    out = {obj: nengo_params(sim, obj) for obj in objs}
    if as_dict:
        return out
    if single:
        return out[objs[0]]
    return [out[o] for o in objs]


def nengo_params(sim, obj) -> dict:
    if isinstance(obj, nengo.Ensemble):
        built = sim.model.params[obj]
        if built.scaled_encoders is None:  # Direct mode
            return {}
        encoders, gain, bias, _ = trained_ensemble(sim, obj)
        return {
            "encoders": encoders,
            "normalize_encoders": False,
            "gain": gain,
            "bias": bias,
        }
    if isinstance(obj, nengo.Connection):
        return connection_params(sim, obj)
    if isinstance(obj, nengo.Node):
        attrs = getattr(obj, "param_attrs", None)
        if not attrs:
            return {}
        leaves = [param_value(sim, obj, a) for a in attrs]
        if any(v is None for v in leaves):
            return {}
        tree = obj.params_from_leaves(leaves)
        return {"params": tree}
    raise ValidationError(
        f"{obj} has no trainable parameters (expected an Ensemble, Connection or JaxNode)",
        attr="objs",
        obj=sim,
    )


def connection_params(sim, conn) -> dict:
    weights = param_value(sim, conn, "weights")
    if weights is None:
        built = sim.model.params.get(conn)
        weights = None if built is None or built.weights is None else built.weights
        if weights is None:
            return {}
    pre = conn.pre_obj
    decoded = isinstance(pre, nengo.Ensemble) and not isinstance(pre.neuron_type, nengo.Direct)
    if decoded:
        if conn.solver.weights:
            raise ValidationError(
                f"{conn} uses a full-weight solver; its trained weights cannot be "
                "expressed as nengo Connection arguments",
                attr="objs",
                obj=sim,
            )
        size = weights.shape[0]
        params = {"solver": NoSolver(weights.T.copy(), weights=False), "transform": None}
        if conn.size_mid != size:
            params["function"] = ZeroFunction(size)
        return params
    transform = conn.transform
    if isinstance(transform, (nengo.transforms.Dense, nengo.transforms.NoTransform)):
        return {"transform": weights}
    if isinstance(transform, (nengo.Convolution, nengo.ConvolutionTranspose)):
        kwargs = {
            name: getattr(transform, name)
            for name in (
                "n_filters",
                "input_shape",
                "kernel_size",
                "strides",
                "padding",
                "channels_last",
                "groups",
            )
            if hasattr(transform, name)
        }
        if isinstance(transform, nengo.ConvolutionTranspose):
            kwargs["output_shape"] = transform.output_shape
        kwargs["input_shape"] = transform.input_shape.shape
        return {"transform": type(transform)(init=weights, **kwargs)}
    raise ValidationError(
        f"{conn}: freezing {type(transform).__name__} transforms is not supported",
        attr="objs",
        obj=sim,
    )


def freeze_params(sim, objs=None) -> None:
    """Write the current (trained) parameters into the nengo objects.

    Afterwards ``nengo.Simulator`` (or a new nengojax Simulator) builds the
    trained model. Objects are updated with the arguments of
    `get_nengo_params`; nothing is changed if any object fails.

    Parameters
    ----------
    objs : nengo.Network, object or list, optional
        What to freeze (default: the whole simulated network).
    """
    check_open(sim)
    todo = get_nengo_params(sim, objects(sim, objs), as_dict=True)
    for obj, params in todo.items():
        if isinstance(obj, nengo.Connection):
            for name in ("function", "transform", "solver"):
                if name in params:
                    setattr(obj, name, params[name])
        elif isinstance(obj, nengo.Node):
            if "params" in params:
                obj.set_params(params["params"])
        else:
            for name, value in params.items():
                setattr(obj, name, value)
