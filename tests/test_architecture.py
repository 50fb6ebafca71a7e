"""The layering rules of the package, read from its source with ``ast`` (module- and function-level imports).

* The engine (shapes, graph, shape_inference, autodiff, costs) and the foundation modules it stands on
  (errors, rng, initializers, checks, limits) import nothing above them: no op, layer, plot,
  training, file or export module, at any level. The one exception is the user-facing methods of
  ``Node`` (``save``, ``summary``, ``plot``, ``export_onnx``...): each is a delegate, one
  function-local import and one call.
* Ops import the engine, the foundation and other ops only (never layers or anything above).
* No two modules import each other at module level (the module-level import graph has no cycle).
  Imports under ``if TYPE_CHECKING:`` are for annotations only (they never run) and are not counted.

Each rule is also run on a deliberately broken copy of a module, so the checks themselves cannot
silently pass.
"""
from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "minigraph"
ENGINE = {"minigraph.shapes", "minigraph.graph", "minigraph.shape_inference", "minigraph.autodiff",
          "minigraph.costs"}  # costs: the memory and compute model of a run, from the shape pass alone
FOUNDATION = {"minigraph.errors", "minigraph.rng", "minigraph.initializers", "minigraph.checks", "minigraph.limits",
              "minigraph.threads", "minigraph.workspace", "minigraph.allocator"}
BELOW_OPS = ENGINE | FOUNDATION


@dataclass(frozen=True)
class Import:
    source: str          # importing module
    target: str          # imported module of the package
    function: str | None  # qualified name of the enclosing function; None at module level
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _targets(node: ast.AST, package: str, known: set[str]) -> list[str]:
    """The package modules an import statement loads (``from .ops import conv`` -> ``minigraph.ops.conv``,
    ``from .ops import relu`` -> ``minigraph.ops``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "minigraph"]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        parts = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base.split(".")[0] != "minigraph":
        return []
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]


def imports_of(source: str, module: str, is_package: bool, known: set[str]) -> list[Import]:
    """Every import of a package module in ``source``, with the function it sits in (if any)."""
    package = module if is_package else module.rsplit(".", 1)[0]
    found: list[Import] = []

    def visit(node: ast.AST, scope: list[str], in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _targets(child, package, known):
                    if target != module:
                        found.append(Import(module, target, ".".join(scope) if in_function else None, child.lineno))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, [*scope, child.name], True)
            elif isinstance(child, ast.ClassDef):
                visit(child, [*scope, child.name], in_function)
            elif isinstance(child, ast.If) and ast.unparse(child.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                visit(ast.Module(body=child.orelse, type_ignores=[]), scope, in_function)  # type-only imports never run
            else:
                visit(child, scope, in_function)

    visit(ast.parse(source), [], False)
    return found


def delegates(source: str) -> set[str]:
    """``Node`` methods whose body is a docstring, one function-local import and one statement."""
    names = set()
    for cls in ast.parse(source).body:
        if isinstance(cls, ast.ClassDef) and cls.name == "Node":
            for fn in cls.body:
                if isinstance(fn, ast.FunctionDef):
                    body = fn.body[1:] if ast.get_docstring(fn) is not None else fn.body
                    if len(body) == 2 and isinstance(body[0], ast.ImportFrom) and not isinstance(
                            body[1], (ast.Import, ast.ImportFrom)):
                        names.add(f"Node.{fn.name}")
    return names


def _read(name: str, path: Path, known: frozenset[str], source: str | None = None) -> tuple[list[Import], set[str]]:
    source = path.read_text() if source is None else source
    return imports_of(source, name, path.name == "__init__.py", set(known)), delegates(source)


_cached_read = functools.lru_cache(maxsize=None)(_read)


def all_imports(overrides: dict[str, str] | None = None) -> tuple[list[Import], dict[str, set[str]]]:
    """Imports of every module (``overrides``: module -> replacement source) and each module's delegates."""
    mods = modules()
    known = frozenset(mods)
    result, delegate_map = [], {}
    for name, path in mods.items():
        if overrides and name in overrides:
            found, delegate_map[name] = _read(name, path, known, overrides[name])
        else:
            found, delegate_map[name] = _cached_read(name, path, known)
        result += found
    return result, delegate_map


def engine_violations(imports: list[Import], delegate_map: dict[str, set[str]]) -> list[str]:
    bad = []
    for imp in imports:
        if imp.source in BELOW_OPS and imp.target not in BELOW_OPS:
            if imp.source == "minigraph.graph" and imp.function in delegate_map[imp.source]:
                continue
            where = f"in {imp.function}()" if imp.function else "at module level"
            bad.append(f"{imp.source} line {imp.line} ({where}) imports {imp.target}")
    return bad


def ops_violations(imports: list[Import]) -> list[str]:
    return [f"{imp.source} line {imp.line} imports {imp.target}" for imp in imports
            if imp.source.startswith("minigraph.ops") and not imp.target.startswith("minigraph.ops")
            and imp.target not in BELOW_OPS]


def module_cycles(imports: list[Import]) -> list[list[str]]:
    graph = nx.DiGraph((imp.source, imp.target) for imp in imports if imp.function is None)
    return sorted(sorted(c) for c in nx.simple_cycles(graph))


def test_the_engine_imports_nothing_above_it():
    imports, delegate_map = all_imports()
    assert not engine_violations(imports, delegate_map), (
        "the engine must not import ops, layers, plot, training, file or export modules; a new module the "
        "engine needs that imports nothing above it belongs in FOUNDATION", engine_violations(imports, delegate_map))


def test_node_methods_above_the_engine_are_delegates():
    imports, delegate_map = all_imports()
    above = {imp.function for imp in imports if imp.source == "minigraph.graph" and imp.target not in BELOW_OPS}
    assert {"Node.save", "Node.summary", "Node.plot", "Node.export_onnx"} <= delegate_map["minigraph.graph"]
    assert above <= delegate_map["minigraph.graph"]


def test_ops_import_no_layer_or_anything_above():
    imports, _ = all_imports()
    assert not ops_violations(imports), ops_violations(imports)


def test_no_two_modules_import_each_other_at_module_level():
    imports, _ = all_imports()
    assert not module_cycles(imports), module_cycles(imports)


# the checks catch what they are meant to catch ------------------------------------------------------
def _with_line(module: str, line: str, inside: str | None = None) -> dict[str, str]:
    source = modules()[module].read_text()
    if inside is None:
        return {module: source + "\n" + line + "\n"}
    head = re.search(rf"^    def {inside}\(self\).*:\n", source, re.MULTILINE)
    assert head, f"{module} has no method {inside}"
    return {module: source[:head.end()] + f"        {line}\n" + source[head.end():]}


@pytest.mark.parametrize("module", sorted(ENGINE))
@pytest.mark.parametrize("line", ["from .ops import relu", "from .layers import Dense", "from .plot import plot",
                                  "from .trainer import Trainer", "from .serialization import save_model",
                                  "from .onnx_export import export_onnx"])
def test_an_engine_import_from_above_is_caught(module, line):
    imports, delegate_map = all_imports(_with_line(module, line))
    assert engine_violations(imports, delegate_map)


def test_a_function_level_import_in_a_non_delegate_is_caught():
    imports, delegate_map = all_imports(_with_line("minigraph.graph", "from .ops import relu", inside="__repr__"))
    assert any("Node.__repr__" in v for v in engine_violations(imports, delegate_map))


def test_an_op_importing_a_layer_is_caught():
    imports, _ = all_imports(_with_line("minigraph.ops.conv", "from ..layers import Dense"))
    assert [v for v in ops_violations(imports) if v.startswith("minigraph.ops.conv ")] == [
        f"minigraph.ops.conv line {len(modules()['minigraph.ops.conv'].read_text().splitlines()) + 2} "
        f"imports minigraph.layers"]


def test_a_module_level_import_cycle_is_caught():
    imports, _ = all_imports(_with_line("minigraph.shapes", "from .graph import Node"))
    assert ["minigraph.graph", "minigraph.shapes"] in module_cycles(imports)
