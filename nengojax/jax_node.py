"""`JaxNode`: a nengo Node whose output is JAX code, and NengoDL-style `Layer`.

A `JaxNode` behaves like any `nengo.Node` (connect to it, probe it), but its
function is traced into the compiled step instead of running through a host
callback, so it is fast, runs on the accelerator and is differentiable. Its
parameters (``params``, a pytree of float arrays) become constant signals named
in ``model.sig[node]["params/<path>"]`` and hence entries of
`.CompiledNetwork.init_params` keyed ``model.key(node, "params/<path>")``: they
can be swept with ``jax.vmap`` and trained with ``jax.grad`` like encoders or
weights.

.. code-block:: python

    with nengo.Network() as net:
        inp = nengo.Node(np.sin)
        mlp = nengojax.JaxNode(
            lambda p, t, x: jnp.tanh(x @ p["w"] + p["b"]),
            shape_in=(1,),
            params={"w": np.ones((1, 4)), "b": np.zeros(4)},
        )
        nengo.Connection(inp, mlp, synapse=None)

A JaxNode also runs in plain ``nengo.Simulator`` (its function is called on
NumPy values every step).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import nengo
import numpy as np
from nengo.base import NengoObject
from nengo.builder import Builder
from nengo.builder.operator import Operator, Reset
from nengo.builder.signal import Signal
from nengo.exceptions import BuildError, NetworkContextError, ValidationError
from nengo.neurons import NeuronType
from nengo.rc import rc
from nengo.transforms import Transform

from .config import configure_settings
from .dtypes import default_float_dtype

__all__ = ["JaxNode", "Layer", "SimJaxNode"]


def _as_shape(shape, name, node) -> tuple | None:
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValidationError(
            f"{node}: {name} must be a tuple of ints (got {shape!r})", attr=name, obj=node
        ) from None
    if any(s < 0 for s in shape):
        raise ValidationError(
            f"{node}: {name} must have non-negative sizes (got {shape})", attr=name, obj=node
        )
    return shape


def _path_str(path) -> str:
    """A stable, readable string for a pytree key path (``"layers/0/w"``)."""
    parts = []
    for k in path:
        if isinstance(k, jax.tree_util.DictKey):
            parts.append(str(k.key))
        elif isinstance(k, jax.tree_util.SequenceKey):
            parts.append(str(k.idx))
        elif isinstance(k, jax.tree_util.GetAttrKey):
            parts.append(str(k.name))
        elif isinstance(k, jax.tree_util.FlattenedIndexKey):
            parts.append(str(k.key))
        else:  # pragma: no cover - custom key types
            parts.append(str(k).strip(".[]'\""))
    return "/".join(parts)


class _NumpyOutput:
    """``node.output`` of a `JaxNode`: computes the output from NumPy values.

    nengo's ``Node.output`` must be a callable ``(t[, x]) -> array``; this one
    calls the JAX function with the node's current ``params``.
    """

    def __init__(self, node: JaxNode):
        self.node = node

    def __call__(self, t, *x):
        node = self.node
        xv = np.asarray(x[0]) if x else None
        y = node.flat_call(node._leaves, np.asarray(t), xv)
        return np.asarray(y, dtype=rc.float_dtype)

    def __repr__(self):
        return f"JaxNode output of {self.node}"


class JaxNode(nengo.Node):
    """A Node computing ``fn`` in JAX.

    Parameters
    ----------
    fn : callable
        Works on ONE sample: ``fn(t, x)`` (``fn(x)`` when ``pass_time=False``;
        ``fn(t)`` when the node has no input, ``fn()`` for neither). With
        ``params`` the call is ``fn(params, t, x)``. ``x`` has shape
        ``shape_in``; the result must have shape ``shape_out`` (it is flattened
        into the node's output) and a float dtype.
    shape_in : int or tuple, optional
        Shape of the input (``size_in = prod(shape_in)``); None: no input.
    shape_out : int or tuple, optional
        Shape of the output; inferred with ``jax.eval_shape`` when not given.
    pass_time : bool
        Whether ``fn`` receives the time ``t`` (a float scalar).
    params : pytree or callable, optional
        A pytree of float arrays, or a function ``key -> pytree`` called with
        ``jax.random.PRNGKey(seed or 0)``. Each leaf becomes a trainable param.
    label : str, optional
        Name of the node.
    seed : int, optional
        Seed of the key given to a ``params`` function.

    Attributes
    ----------
    param_tree : pytree or None
        The initial params (NumPy leaves). (``params`` is taken by nengo: it
        lists an object's nengo parameters.) Each leaf is built into
        ``model.sig[node][attr]`` with ``attr`` in `param_attrs`
        (``"params/<path>"``, e.g. ``"params/layers/0/w"``; ``"params"`` for a
        bare array), so its key in `.CompiledNetwork.init_params` is
        ``compiled.key(node, attr)``.
    shape_in, shape_out : tuple
        Input (``()`` when there is none) and output shape of ``fn``.
    """

    def __init__(
        self,
        fn,
        shape_in=None,
        shape_out=None,
        pass_time=True,
        params=None,
        label=None,
        seed=None,
    ):
        # nengo.Node.__init__ refuses seeds and would call ``output``; set its
        # three parameters ourselves after validating ``fn`` in JAX
        NengoObject.__init__(self, label=label, seed=seed)
        if not callable(fn):
            raise ValidationError(f"{self}: fn must be callable (got {fn!r})", attr="fn", obj=self)
        self.fn = fn
        self.pass_time = bool(pass_time)
        self.shape_in = _as_shape(shape_in, "shape_in", self)
        if self.shape_in is None:
            self.shape_in = ()
            size_in = 0
        else:
            size_in = math.prod(self.shape_in)
        self._has_params = params is not None
        self._set_params(params)
        shape_out = _as_shape(shape_out, "shape_out", self)
        self.shape_out = self._check_fn(shape_out, size_in)

        self.size_in = size_in
        self.size_out = math.prod(self.shape_out)
        self.output = _NumpyOutput(self)

    # --- params -------------------------------------------------------------------

    def _set_params(self, params) -> None:
        if params is not None and callable(params) and not _is_pytree_node(params):
            key = jax.random.PRNGKey(0 if self.seed is None else self.seed)
            try:
                params = params(key)
            except Exception as e:
                raise ValidationError(
                    f"{self}: the params function failed when called with a PRNG key: "
                    f"{type(e).__name__}: {e}",
                    attr="params",
                    obj=self,
                ) from e
        if params is None:
            self.param_tree = None
            self._leaves, self._paths, self._treedef = [], [], jax.tree_util.tree_structure(None)
            return
        try:
            flat, treedef = jax.tree_util.tree_flatten_with_path(params)
        except Exception as e:  # pragma: no cover - flattening rarely fails
            raise ValidationError(
                f"{self}: params must be a pytree of float arrays ({e})", attr="params", obj=self
            ) from e
        leaves, paths = [], []
        for path, leaf in flat:
            name = _path_str(path)
            try:
                arr = np.asarray(leaf)
            except Exception:
                arr = np.asarray(None)
            if arr.dtype.kind != "f":
                where = f"params leaf {name!r}" if name else "params"
                raise ValidationError(
                    f"{self}: params must be a pytree of float arrays, but {where} is "
                    f"{type(leaf).__name__} with dtype {arr.dtype}",
                    attr="params",
                    obj=self,
                )
            leaves.append(np.array(arr, dtype=rc.float_dtype))
            paths.append(name)
        if len(set(paths)) != len(paths):
            raise ValidationError(
                f"{self}: params leaf paths are not unique ({paths})", attr="params", obj=self
            )
        self._leaves, self._paths, self._treedef = leaves, paths, treedef
        self.param_tree = jax.tree_util.tree_unflatten(treedef, leaves)

    def set_params(self, params) -> None:
        """Replace ``params`` (a pytree of float arrays, as given to the constructor)."""
        self._set_params(params)

    def params_from_leaves(self, leaves) -> object:
        """The params pytree with leaves ``leaves`` (in `param_attrs` order)."""
        return jax.tree_util.tree_unflatten(self._treedef, list(leaves))

    @property
    def param_attrs(self) -> list[str]:
        """The ``model.sig[node]`` attribute of each params leaf (flatten order)."""
        return [f"params/{p}" if p else "params" for p in self._paths]

    # --- calling fn ------------------------------------------------------------------

    def _call(self, leaves, t, x):
        """``fn`` on one sample, with params rebuilt from ``leaves``."""
        args = []
        if self._has_params:
            args.append(jax.tree_util.tree_unflatten(self._treedef, list(leaves)))
        if self.pass_time:
            args.append(t)
        if x is not None:
            args.append(jnp.reshape(x, self.shape_in))
        return self.fn(*args)

    def flat_call(self, leaves, t, x):
        """``fn``'s output, checked and flattened to ``(size_out,)``."""
        y = self._call(leaves, t, x)
        shape = tuple(jnp.shape(y))
        if shape != self.shape_out and not (shape == () and self.shape_out == (1,)):
            raise BuildError(
                f"{self}: fn returned shape {shape}, expected shape_out {self.shape_out}"
            )
        return jnp.reshape(y, (self.size_out,))

    def convolves(self, dtype) -> bool:
        """Whether ``fn`` calls ``lax.conv_general_dilated`` (traced abstractly)."""
        t = jax.ShapeDtypeStruct((), dtype)
        x = jax.ShapeDtypeStruct((self.size_in,), dtype) if self.size_in > 0 else None
        leaves = [jax.ShapeDtypeStruct(v.shape, dtype) for v in self._leaves]
        return "conv_general_dilated" in str(jax.make_jaxpr(self.flat_call)(leaves, t, x))

    def _check_fn(self, shape_out, size_in) -> tuple:
        """Trace ``fn`` abstractly; returns the (inferred or checked) output shape."""
        dtype = default_float_dtype()
        t = jax.ShapeDtypeStruct((), dtype)
        x = jax.ShapeDtypeStruct(self.shape_in, dtype) if size_in > 0 else None
        leaves = [jax.ShapeDtypeStruct(v.shape, dtype) for v in self._leaves]
        try:
            out = jax.eval_shape(self._call, leaves, t, x)
        except Exception as e:
            raise ValidationError(
                f"{self}: fn failed when traced with {self._describe_args(size_in)}: "
                f"{type(e).__name__}: {e}",
                attr="fn",
                obj=self,
            ) from e
        if not isinstance(out, jax.ShapeDtypeStruct):
            raise ValidationError(
                f"{self}: fn must return one array, got {jax.tree_util.tree_structure(out)}",
                attr="fn",
                obj=self,
            )
        if np.dtype(out.dtype).kind != "f":
            raise ValidationError(
                f"{self}: fn must return a float array, got dtype {out.dtype}",
                attr="fn",
                obj=self,
            )
        shape = tuple(out.shape)
        if shape_out is None:
            return shape
        if shape != shape_out and not (shape == () and shape_out == (1,)):
            raise ValidationError(
                f"{self}: fn returned shape {shape}, expected shape_out {shape_out}",
                attr="shape_out",
                obj=self,
            )
        return shape_out

    def _describe_args(self, size_in) -> str:
        parts = []
        if self._has_params:
            parts.append("params")
        if self.pass_time:
            parts.append("t: float scalar")
        if size_in > 0:
            parts.append(f"x: shape {self.shape_in}")
        return ", ".join(parts) if parts else "no arguments"

    def check(self) -> None:
        """Validate ``fn`` and ``params`` again (the builder calls this)."""
        self._set_params(self.param_tree if self._has_params else None)
        self._check_fn(self.shape_out, self.size_in)


def _is_pytree_node(obj) -> bool:
    """Whether ``obj`` is a pytree container (not a leaf); a callable params is a
    function ``key -> pytree`` only if it is a leaf."""
    return jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(obj)) is False


class SimJaxNode(Operator):
    """Sets ``output`` to the flattened ``node.fn(params, t, x)``.

    Notes
    -----
    1. sets ``[output]``
    2. incs ``[]``
    3. reads ``[t] (if passed) + [x] (if any) + params``
    4. updates ``[]``
    """

    def __init__(self, node, output, t, x, params, tag=None):
        super().__init__(tag=tag)
        self.node = node
        self.t_passed = t is not None
        self.x_passed = x is not None
        self.sets = [] if output is None else [output]
        self.incs = []
        self.reads = ([] if t is None else [t]) + ([] if x is None else [x]) + list(params)
        self.updates = []

    @property
    def output(self):
        return self.sets[0] if self.sets else None

    @property
    def pure_sets(self):
        """Signals overwritten without being read (so never carried between steps)."""
        return list(self.sets)

    @property
    def t(self):
        return self.reads[0] if self.t_passed else None

    @property
    def x(self):
        return self.reads[int(self.t_passed)] if self.x_passed else None

    @property
    def params(self):
        return self.reads[int(self.t_passed) + int(self.x_passed) :]

    @property
    def _descstr(self):
        return f"{self.x} -> {self.output}, node={self.node}"

    def make_step(self, signals, dt, rng):
        node = self.node
        out = None if self.output is None else signals[self.output]
        t = signals[self.t] if self.t_passed else None
        x = signals[self.x] if self.x_passed else None
        params = [signals[p] for p in self.params]
        fn = jax.jit(node.flat_call)

        def step_simjaxnode():
            y = fn(params, t, x)
            if out is not None:
                out[...] = np.asarray(y)

        return step_simjaxnode


@Builder.register(JaxNode)
def build_jax_node(model, node: JaxNode):
    """Build a `JaxNode`: input/output signals like ``build_node``, one constant
    signal per params leaf (``model.sig[node]["params/<path>"]``) and a
    `SimJaxNode` operator."""
    node.check()
    if node.size_in > 0:
        sig_in = Signal(shape=node.size_in, name=f"{node}.in")
        model.add_op(Reset(sig_in))
    else:
        sig_in = None
    sig_out = Signal(shape=node.size_out, name=f"{node}.out") if node.size_out > 0 else None
    param_sigs = []
    for attr, leaf in zip(node.param_attrs, node._leaves, strict=True):
        sig = Signal(np.array(leaf, dtype=rc.float_dtype), name=f"{node}.{attr}", readonly=True)
        model.sig[node][attr] = sig
        param_sigs.append(sig)
    t = model.time if node.pass_time else None
    model.add_op(SimJaxNode(node, sig_out, t, sig_in, param_sigs, tag=f"{node}"))
    model.sig[node]["in"] = sig_in
    model.sig[node]["out"] = sig_out
    model.params[node] = None


# --- Layer ---------------------------------------------------------------------------


def _post_size(input, transform, shape_in) -> int:
    if shape_in is not None:
        return math.prod(_as_shape(shape_in, "shape_in", "Layer"))
    if isinstance(transform, Transform):
        return transform.size_out
    arr = np.asarray(transform)
    if arr.ndim == 2:
        return arr.shape[0]
    return input.size_out


class Layer:
    """NengoDL-style builder of layers from functions or neuron types.

    ``Layer(fn)(input, transform=1, shape_in=None, synapse=None, **kwargs)``
    creates a `JaxNode` computing ``fn(x)`` (``pass_time=False``; ``kwargs`` go
    to `JaxNode`, e.g. ``params``) and connects ``input`` to it.

    ``Layer(neuron_type)(input, transform=1, shape_in=None, synapse=None,
    **kwargs)`` creates an Ensemble of neurons of that type (``kwargs`` go to
    `nengo.Ensemble`; gains and biases come from them or from the network's
    config, e.g. ``max_rates`` and ``intercepts``, as in NengoDL) and connects
    ``input`` to its ``.neurons``.

    As NengoDL's Layer, the input connection is not trainable (its
    ``trainable`` config is set to False; set it to True to train it).

    ``transform`` is anything `nengo.Connection` accepts (an array or a nengo
    Transform such as `nengo.Convolution`). The layer's size is
    ``prod(shape_in)`` if given, else the transform's output size. Returns the
    new Node (or the Ensemble's ``.neurons``), and also the Connection when
    ``return_conn=True``. Must be called inside a ``with net:`` block.
    """

    def __init__(self, layer_func):
        if isinstance(layer_func, type) and issubclass(layer_func, NeuronType):
            layer_func = layer_func()
        if not (isinstance(layer_func, NeuronType) or callable(layer_func)):
            raise ValidationError(
                f"Layer needs a function or a nengo neuron type (got {layer_func!r})",
                attr="layer_func",
            )
        self.layer_func = layer_func

    def __call__(
        self, input, transform=1, shape_in=None, synapse=None, return_conn=False, **kwargs
    ):
        if len(nengo.Network.context) == 0:
            raise NetworkContextError(
                f"{self} must be called inside a 'with network:' block to add its objects"
            )
        size = _post_size(input, transform, shape_in)
        if isinstance(self.layer_func, NeuronType):
            ens = nengo.Ensemble(size, 1, neuron_type=self.layer_func, **kwargs)
            obj = ens.neurons
        else:
            shape = tuple(shape_in) if shape_in is not None else (size,)
            if isinstance(shape_in, (int, np.integer)):
                shape = (int(shape_in),)
            kwargs.setdefault("pass_time", False)
            obj = JaxNode(self.layer_func, shape_in=shape, **kwargs)
        conn = nengo.Connection(input, obj, transform=transform, synapse=synapse)
        config = nengo.Network.context[-1].config
        conn_params = config.params.get(nengo.Connection)
        if conn_params is None or "trainable" not in conn_params._extra_params:
            configure_settings()  # adds the trainable config parameter, changes nothing
        config[conn].trainable = False
        return (obj, conn) if return_conn else obj

    def __str__(self):
        name = getattr(self.layer_func, "__name__", None) or str(self.layer_func)
        return f"Layer({name})"
