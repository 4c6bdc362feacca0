"""The package reads as its layers: static checks of the import structure.

Layers, lowest first (a module imports only modules of its own or lower layers):

0. ``dtypes``, ``config``, ``losses``, ``sharding``, ``neurons``, ``jax_node``,
   ``callbacks``, then ``distributed`` (on ``sharding``);
1. ``compiler`` (nengo's built model -> a static Program; never ``ops``);
2. ``ops`` (lowerings: Program -> one step function);
3. ``runtime`` (the only scan over time);
4. ``training`` (optax over the runtime);
5. ``simulator`` (nengo's API and its parts), ``converter`` and ``nir`` (models in
   and out);
6. ``nengojax/__init__`` (the public face).
"""

from __future__ import annotations

import ast
import os
import re

import pytest

PKG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "nengojax")

LAYERS = {
    "dtypes": 0,
    "config": 0,
    "losses": 0,
    "sharding": 0,
    "neurons": 0,
    "jax_node": 0,
    "callbacks": 0,
    "cache": 0,
    "dispatch": 0,
    "validation": 0,
    "dists": 0,
    "distributed": 0,
    "compiler": 1,
    "ops": 2,
    "runtime": 3,
    "training": 4,
    "simulator": 5,
    "converter": 5,
    "nir": 5,
    "__init__": 6,
}


def _modules() -> dict[str, str]:
    """Dotted module name (relative to nengojax) -> path."""
    out = {}
    for root, _, files in os.walk(PKG):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, PKG)[:-3].replace(os.sep, ".")
                out[rel.removesuffix(".__init__") if rel != "__init__" else rel] = path
    return out


MODULES = _modules()


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]


def _imports(module: str) -> set[str]:
    """The nengojax modules ``module`` imports (dotted, relative to nengojax)."""
    with open(MODULES[module]) as f:
        tree = ast.parse(f.read())
    is_pkg = MODULES[module].endswith("__init__.py")
    here = module.split(".") if module != "__init__" else []
    package = here if is_pkg else here[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
            elif node.module and node.module.split(".")[0] == "nengojax":
                base, node_module = [], node.module.split(".", 1)[1:]
                target = ".".join(node_module)
                found.add(target or "__init__")
                continue
            else:
                continue
            target = ".".join(base + ([node.module] if node.module else []))
            if node.module is None:  # from . import a, b
                for alias in node.names:
                    name = ".".join(base + [alias.name])
                    found.add(name if name in MODULES else ".".join(base) or "__init__")
            else:
                found.add(target if target in MODULES else target.rsplit(".", 1)[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("nengojax."):
                    found.add(alias.name.split(".", 1)[1])
    found.discard(module)
    return {m for m in found if m in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_downward(module):
    mine = _layer(module)
    upward = sorted(m for m in _imports(module) if _layer(m) > mine)
    assert not upward, f"{module} (layer {mine}) imports higher layers: {upward}"


def test_no_import_cycles():
    graph = {m: _imports(m) for m in MODULES}
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for n in graph[m]:
            if state.get(n) == 1:
                cycle = path[path.index(n) :] + [n]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if n not in state:
                visit(n, [*path, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module):
    with open(MODULES[module]) as f:
        n = sum(1 for _ in f)
    assert n <= 600, f"{module} has {n} lines (at most 600: split it by concept)"


def _private_names_defined(path) -> set[str]:
    with open(path) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_no_module_touches_another_modules_private_names():
    defined = {m: _private_names_defined(p) for m, p in MODULES.items()}
    everywhere = set().union(*defined.values())
    offences = []
    for module, path in MODULES.items():
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Attribute) and not (
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            ):
                names.append(node.attr)
            elif isinstance(node, ast.ImportFrom):
                names.extend(a.name for a in node.names)
            for name in names:
                private = name.startswith("_") and not name.startswith("__")
                if private and name in everywhere and name not in defined[module]:
                    offences.append(f"{module}:{node.lineno} uses {name}")
    assert not offences, offences


def test_one_scan_over_time():
    where = []
    for module, path in MODULES.items():
        with open(path) as f:
            text = f.read()
        if re.search(r"\blax\.scan\(", text):
            where.append(module)
    # runtime.run holds every scan: over time steps, and (scan_or_call) over
    # the minibatches of a training epoch
    assert sorted(where) == ["runtime.run"], where
