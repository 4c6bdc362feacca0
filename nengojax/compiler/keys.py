"""Stable string names for the objects of a network.

Names depend only on the structure of the network (the order in which objects
were added), so they are the same across compiles of the same network.
"""

from __future__ import annotations

import re

import nengo
from nengo.exceptions import ValidationError


def _slug(label) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", str(label)).strip("_")


class KeyMap:
    """Maps nengo objects to stable string keys.

    Parameters
    ----------
    network : nengo.Network or None
        The network whose objects are named.
    """

    def __init__(self, network: nengo.Network | None, model=None):
        self._keys: dict = {}
        self._objs: dict[str, object] = {}
        self.nodes: list = []
        if network is None:
            if model is not None:
                self._from_model(model)
            return
        self.nodes = list(network.all_nodes)
        kinds = [
            ("ensemble", network.all_ensembles),
            ("node", network.all_nodes),
            ("connection", network.all_connections),
            ("probe", network.all_probes),
            ("network", [network, *network.all_networks]),
        ]
        for prefix, objs in kinds:
            for i, obj in enumerate(objs):
                label = getattr(obj, "label", None)
                key = f"{prefix}_{i}" + (f"_{_slug(label)}" if label else "")
                self._add(obj, key)
                if isinstance(obj, nengo.Ensemble):
                    self._add(obj.neurons, f"{key}.neurons")
                if isinstance(obj, nengo.Connection) and obj.learning_rule is not None:
                    rules = obj.learning_rule
                    if isinstance(rules, nengo.connection.LearningRule):
                        self._add(rules, f"{key}.learning_rule")
                    else:
                        items = rules.items() if isinstance(rules, dict) else enumerate(rules)
                        for name, rule in items:
                            self._add(rule, f"{key}.learning_rule_{_slug(name)}")

    def _from_model(self, model) -> None:
        """Name the objects of a pre-built model (no network given)."""
        objs = [o for o in model.params if not isinstance(o, str)]
        for prefix, cls in [
            ("ensemble", nengo.Ensemble),
            ("node", nengo.Node),
            ("connection", nengo.Connection),
            ("probe", nengo.Probe),
        ]:
            for i, obj in enumerate(o for o in objs if type(o) is cls or isinstance(o, cls)):
                label = getattr(obj, "label", None)
                key = f"{prefix}_{i}" + (f"_{_slug(label)}" if label else "")
                self._add(obj, key)
                if isinstance(obj, nengo.Ensemble):
                    self._add(obj.neurons, f"{key}.neurons")
        self.nodes = [o for o in objs if isinstance(o, nengo.Node)]

    def _add(self, obj, key: str) -> None:
        self._keys[obj] = key
        self._objs[key] = obj

    def has(self, obj) -> bool:
        """Whether ``obj`` has a key."""
        return obj in self._keys

    def key(self, obj, attr: str | None = None) -> str:
        """The key of ``obj`` (and of its attribute ``attr``, if given)."""
        if isinstance(obj, str):
            return obj if attr is None else f"{obj}.{attr}"
        if obj not in self._keys:
            raise ValidationError(
                f"{obj} is not part of the compiled network", attr="obj", obj=obj
            )
        key = self._keys[obj]
        return key if attr is None else f"{key}.{attr}"

    def obj(self, key: str):
        """The object named ``key``."""
        return self._objs[key]

    def objects(self) -> list:
        """Every named object, in key order of creation."""
        return list(self._objs.values())
