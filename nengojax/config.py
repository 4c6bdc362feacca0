"""Training settings stored in a network's config: `configure_settings`.

.. code-block:: python

    with nengo.Network() as net:
        nengojax.config.configure_settings(trainable=False, spike_aware=True)
        net.config[nengo.Ensemble].trainable = True  # train encoders and biases
        ...

Which parameters are trained
----------------------------
``configure_settings`` adds a ``trainable`` config parameter (default ``None``)
to `nengo.Ensemble`, `nengo.Connection`, `nengo.ensemble.Neurons`, `nengo.Node`
and `nengo.Network`. The trainable parameters of an object are

- an Ensemble: its (scaled) encoders, and the bias of its neurons unless the
  neurons say otherwise;
- ``ensemble.neurons``: the bias (by default, the ensemble's setting);
- a Connection: its weights (decoders times transform, or the transform);
- a `nengojax.JaxNode` (a `nengo.Node`): its ``params``. As NengoDL's
  TensorNode weights, they are trained unless set otherwise on the node itself
  (``net.config[node].trainable = False``) or on the Node type
  (``net.config[nengo.Node].trainable = False``); neither the ``trainable``
  of `configure_settings` nor a subnetwork's setting freezes them.

The setting of an object is resolved from the outermost network to the network
containing it; at each level a type setting (``net.config[nengo.Ensemble]``)
is overridden by a setting on the subnetwork on the path
(``net.config[subnet].trainable``), which is overridden by a setting on the
object itself (``net.config[ens].trainable``); a deeper network's setting
overrides an outer one's. ``None`` means "not set": where nothing is set, the
object is trainable. Signals that an online learning rule (PES, Voja, ...)
changes are simulation state, not parameters, and are never trained.
"""

from __future__ import annotations

import warnings

import nengo
from nengo.ensemble import Neurons
from nengo.exceptions import ConfigError, NetworkContextError, ValidationError
from nengo.params import BoolParam, Parameter

__all__ = [
    "configure_settings",
    "get_setting",
    "keeps_history",
    "resolve_trainable",
    "trainable_keys",
]

_SETTINGS_PARAM = "nengojax_settings"
_TRAINABLE_CLASSES = (nengo.Ensemble, nengo.Connection, Neurons, nengo.Node, nengo.Network)
_DEFAULTS = {
    "trainable": None,
    "spike_aware": False,
    "lif_smoothing": None,
    "remat": False,
    "inference_only": False,
    "dtype": None,
    "keep_history": True,
    "stateful": True,
}


class _Unset:
    def __repr__(self):
        return "<unset>"


_UNSET = _Unset()


def configure_settings(
    trainable=_UNSET,
    spike_aware=_UNSET,
    lif_smoothing=_UNSET,
    remat=_UNSET,
    inference_only=_UNSET,
    dtype=_UNSET,
    keep_history=_UNSET,
    stateful=_UNSET,
    **nengo_dl_options,
) -> None:
    """Store nengojax training settings in the config of the current network.

    Call inside ``with net:``. Only the settings given are changed; later calls
    update earlier ones. ``spike_aware``, ``lif_smoothing`` and ``remat`` are read
    from the top-level network given to the Simulator.

    Parameters
    ----------
    trainable : bool or None
        Default ``trainable`` setting of Ensembles and Connections in this
        network (None: trainable unless set otherwise; JaxNode params, as
        NengoDL's TensorNode weights, are not affected). Also adds the
        ``trainable`` config parameter, which must exist before
        ``net.config[...].trainable`` can be set. Default: None.
    spike_aware : bool
        Train spiking neurons in ``"spike_aware"`` mode (the spiking model runs
        forward, gradients come from the rate counterparts) instead of the
        default ``"rate"`` mode (spiking neurons replaced by their rate
        counterparts). Default: False.
    lif_smoothing : float or None
        If given, LIF neurons are trained with `.SoftLIFRate` with this
        ``sigma`` as their rate counterpart. Default: None.
    remat : bool
        Recompute the forward pass of each step during backpropagation
        (``jax.checkpoint``): memory bounded in the number of steps, for ~10-30 %
        more time. Default: False.
    inference_only : bool
        The model is only simulated, never trained: nothing is trainable and
        ``Simulator.compile`` refuses an optimizer. Default: False.
    dtype : str, optional
        The Simulator's float dtype when it is not given (``"float32"`` or
        ``"float64"``).
    keep_history : bool
        As NengoDL's: ``False`` keeps only the last step of each probe (per
        ``run_steps`` call in ``sim.data``; ``predict`` gives ``(n_items, 1,
        ...)`` and ``fit``/``evaluate`` take targets of one step, the last).
        Also adds a ``keep_history`` config parameter to `nengo.Probe`, so one
        probe can differ: ``net.config[probe].keep_history = True``.
        Default: True.
    stateful : bool
        As NengoDL's: ``False`` makes ``run_steps`` (and ``run``, ``step``)
        stateless by default (see `nengojax.Simulator.run_steps`); ``fit``,
        ``predict`` and ``evaluate`` are stateless by default anyway, and refuse
        ``stateful=True``. Default: True.
    **nengo_dl_options
        NengoDL's ``use_loop``, ``planner``, ``sorter`` and ``simplifications``
        are accepted, with a note: JAX's compiler makes them moot. Any other
        name raises a `ValidationError`.
    """
    moot = {"use_loop", "planner", "sorter", "simplifications"}
    unknown = sorted(set(nengo_dl_options) - moot)
    if unknown:
        raise ValidationError(
            f"configure_settings: unknown settings {unknown} (known: "
            f"{sorted(_DEFAULTS)}, and NengoDL's moot {sorted(moot)})",
            attr=unknown[0],
        )
    if nengo_dl_options:
        warnings.warn(
            f"configure_settings: {sorted(nengo_dl_options)} have no effect in nengojax "
            "(JAX compiles the whole step into one XLA program: no planner, sorter, "
            "simplifications or loop choice to make)",
            UserWarning,
            stacklevel=2,
        )
    if not nengo.Network.context:
        raise NetworkContextError(
            "configure_settings must be called within a Network context (`with net:`)"
        )
    net = nengo.Network.context[-1]
    config = net.config
    for cls in _TRAINABLE_CLASSES:
        if cls not in config.params:
            config.configures(cls)
        cp = config.params[cls]
        if "trainable" not in cp._extra_params:
            cp.set_param("trainable", BoolParam("trainable", default=None, optional=True))
    if trainable is not _UNSET:
        if trainable is not None and not isinstance(trainable, bool):
            raise ValidationError(
                f"trainable must be True, False or None (got {trainable!r})", attr="trainable"
            )
        for cls in (nengo.Ensemble, nengo.Connection):
            config.params[cls].trainable = trainable

    settings = dict(_settings_of(net) or {})
    if spike_aware is not _UNSET:
        settings["spike_aware"] = bool(spike_aware)
    if lif_smoothing is not _UNSET:
        if lif_smoothing is not None and not float(lif_smoothing) > 0:
            raise ValidationError(
                f"lif_smoothing must be a positive number or None (got {lif_smoothing!r})",
                attr="lif_smoothing",
            )
        settings["lif_smoothing"] = None if lif_smoothing is None else float(lif_smoothing)
    if remat is not _UNSET:
        settings["remat"] = bool(remat)
    if inference_only is not _UNSET:
        settings["inference_only"] = bool(inference_only)
    if dtype is not _UNSET:
        if dtype not in (None, "float32", "float64"):
            raise ValidationError(
                f"dtype must be 'float32', 'float64' or None (got {dtype!r})", attr="dtype"
            )
        settings["dtype"] = dtype
    if trainable is not _UNSET:
        settings["trainable"] = trainable
    for name, value in (("keep_history", keep_history), ("stateful", stateful)):
        if value is not _UNSET:
            if not isinstance(value, bool):
                raise ValidationError(f"{name} must be True or False (got {value!r})", attr=name)
            settings[name] = value
    if nengo.Probe not in config.params:
        config.configures(nengo.Probe)
    probe_params = config.params[nengo.Probe]
    if "keep_history" not in probe_params._extra_params:
        probe_params.set_param(
            "keep_history", BoolParam("keep_history", default=None, optional=True)
        )
    cp = config.params[nengo.Network]
    if _SETTINGS_PARAM not in cp._extra_params:
        cp.set_param(_SETTINGS_PARAM, Parameter(_SETTINGS_PARAM, default=None, optional=True))
    setattr(cp, _SETTINGS_PARAM, settings)


def _settings_of(net) -> dict | None:
    if net is None:
        return None
    cp = net.config.params.get(nengo.Network)
    if cp is None or _SETTINGS_PARAM not in cp._extra_params:
        return None
    return getattr(cp, _SETTINGS_PARAM)


def get_setting(net, name: str, default=None):
    """The value of setting ``name`` configured on ``net`` (``default`` if unset).

    Parameters
    ----------
    net : nengo.Network or None
        The network (the top-level one for global settings).
    name : str
        A setting of `configure_settings` (``"trainable"``, ``"spike_aware"``, ...).
    default
        Returned when the setting was not configured.
    """
    if name not in _DEFAULTS:
        raise ValidationError(f"unknown setting {name!r} (known: {sorted(_DEFAULTS)})", attr=name)
    settings = _settings_of(net)
    if settings is None or name not in settings:
        return default
    return settings[name]


def keeps_history(net, probe) -> bool:
    """Whether ``probe`` keeps every step (NengoDL's ``keep_history``).

    The probe's own ``keep_history`` config value in the network ``net`` or any
    of its subnetworks, where set; else ``net``'s setting (default True).
    """
    for network in [net, *net.all_networks] if net is not None else []:
        params = network.config.params.get(nengo.Probe)
        if params is None or "keep_history" not in params._extra_params:
            continue
        try:
            value = network.config[probe].keep_history
        except (ConfigError, KeyError):
            continue
        if value is not None:
            return bool(value)
    return bool(get_setting(net, "keep_history", True))


# --- trainable resolution -----------------------------------------------------------


def _type_value(config, obj):
    """``trainable`` set on the nearest configured class of ``obj`` in ``config``."""
    for cls in type(obj).__mro__:
        cp = config.params.get(cls)
        if cp is None:
            continue
        if "trainable" not in cp._extra_params:
            return None
        return cp.trainable
    return None


def _instance_value(config, obj):
    """``trainable`` set on ``obj`` itself in ``config`` (without side effects)."""
    ip = config.params.get(obj)
    if ip is None:
        return None
    try:
        if "trainable" not in ip:
            return None
        return ip.trainable
    except (ConfigError, AttributeError, KeyError):
        return None


def parents(network) -> dict:
    """Map each object (and subnetwork) of ``network`` to its chain of networks."""
    chains = {}

    def walk(net, chain):
        chain = chain + [net]
        for obj in (*net.ensembles, *net.nodes, *net.connections):
            chains[obj] = chain
            if isinstance(obj, nengo.Ensemble):
                chains[obj.neurons] = chain
        for sub in net.networks:
            chains[sub] = chain
            walk(sub, chain)

    walk(network, [])
    return chains


def resolve_trainable(network, obj, chains: dict | None = None):
    """The ``trainable`` setting of ``obj`` in ``network``, and where it came from.

    Parameters
    ----------
    network : nengo.Network
        The top-level network.
    obj : nengo.Ensemble, nengo.Connection, nengo.Node or nengo.ensemble.Neurons
        The object.
    chains : dict, optional
        Precomputed ``parents(network)``.

    Returns
    -------
    value : bool or None
        The resolved setting (None: nothing set; neurons then follow their
        ensemble, everything else is trainable).
    source : str or None
        ``"instance"``, ``"network"`` or ``"type"`` (what set ``value``).
    """
    chains = parents(network) if chains is None else chains
    chain = chains.get(obj, [network])
    value, source = None, None
    for i, net in enumerate(chain):
        config = net.config
        v = _type_value(config, obj)
        if v is not None:
            value, source = v, "type"
        if i + 1 < len(chain):
            v = _instance_value(config, chain[i + 1])
            if v is not None:
                value, source = v, "network"
        v = _instance_value(config, obj)
        if v is not None:
            value, source = v, "instance"
    return value, source


def trainable_keys(compiled, network=None) -> list[str]:
    """Keys of ``compiled.init_params()`` that are trainable under the config.

    Parameters
    ----------
    compiled : nengojax.CompiledNetwork
        The compiled network.
    network : nengo.Network, optional
        The network holding the config (default: ``compiled.network``). Without
        one, every encoder, bias, weight and JaxNode parameter is trainable.

    Returns
    -------
    list of str
        Sorted trainable keys; the other params are frozen.
    """
    network = compiled.network if network is None else network
    if get_setting(network, "inference_only", False):
        return []
    params = compiled.program.params
    chains = parents(network) if network is not None else {}
    out = set()

    def setting(obj):
        if network is None:
            return None, None
        return resolve_trainable(network, obj, chains)

    for obj in compiled.keys.objects():
        if isinstance(obj, nengo.Ensemble):
            value, source = setting(obj)
            ens_on = value is not False
            enc = compiled.program.key(obj, "encoders")
            if ens_on and enc in params:
                out.add(enc)
            elif value and source == "instance" and enc not in params:
                _warn_state(obj, "encoders")
            nvalue = _own_setting(network, obj.neurons, chains) if network else None
            bias = compiled.program.key(obj.neurons, "bias")
            if (ens_on if nvalue is None else nvalue) and bias in params:
                out.add(bias)
        elif isinstance(obj, nengo.Connection):
            value, source = setting(obj)
            w = compiled.program.key(obj, "weights")
            if value is not False and w in params:
                out.add(w)
            elif value and source == "instance" and obj.learning_rule is not None:
                _warn_state(obj, "weights")
        elif isinstance(obj, nengo.Node):
            if network is not None and _own_setting(network, obj, chains) is False:
                continue
            base = compiled.program.key(obj, "params")
            out.update(k for k in params if k == base or k.startswith(base + "/"))
    return sorted(out)


def untrainable(compiled, network=None) -> dict[str, str]:
    """Encoders, biases and weights the config makes trainable that are not params.

    nengo's operator merger decides where signals live. Two cases leave a
    signal out of ``params``: it shares an array with simulation state, or it
    was stored once with an equal signal of another object (the scalar
    transforms of merged connections), which is then trained as one value.
    Building with ``optimize=False`` (no merging) makes each its own param.
    Weights changed by a learning rule are state by design and not listed.

    Parameters
    ----------
    compiled : nengojax.CompiledNetwork
        The compiled network.
    network : nengo.Network, optional
        The network holding the config (default: ``compiled.network``).

    Returns
    -------
    dict
        Key of each such signal -> why: ``"state"``, or the key of the param it
        is trained as (see `nengojax.CompiledNetwork.key`).
    """
    network = compiled.network if network is None else network
    if network is None or get_setting(network, "inference_only", False):
        return {}
    program = compiled.program
    sig = program.model.sig
    chains = parents(network)
    learned = {c.post_obj for c in network.all_connections if c.learning_rule is not None}
    candidates = []
    for ens in network.all_ensembles:
        if ens not in learned:  # Voja learns these encoders: state, not params
            candidates.append((ens, ens, "encoders"))
        candidates.append((ens, ens.neurons, "bias"))
    for conn in network.all_connections:
        if conn.learning_rule is None:
            candidates.append((conn, conn, "weights"))
    out = {}
    for owner, obj, attr in candidates:
        key = program.key(obj, attr)
        if sig.get(obj, {}).get(attr) is None or key in program.params:
            continue
        if resolve_trainable(network, owner, chains)[0] is not False:
            out[key] = program.layout.tied.get(key, "state")
    return out


def _own_setting(network, obj, chains):
    """``obj``'s own setting: only settings on its type or on itself count, not
    a network's default (used for neurons, which otherwise follow their
    ensemble, and Nodes, whose JaxNode params are trainable unless set)."""
    value = None
    for net in chains.get(obj, [network]):
        v = _type_value(net.config, obj)
        if v is not None:
            value = v
        v = _instance_value(net.config, obj)
        if v is not None:
            value = v
    return value


def _warn_state(obj, what):
    warnings.warn(
        f"{obj} is marked trainable, but its {what} are changed by an online learning "
        "rule: they are simulation state, not parameters, and are not trained",
        UserWarning,
        stacklevel=3,
    )
