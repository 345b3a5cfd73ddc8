"""The layer contract of ``scripts/``: the order written down once, checked on every run.

The layers are the subpackages of ``scripts/``, lowest first; the modules at the
top of ``scripts/`` are the documented steps, a layer of their own.  Every
``import`` of a ``scripts`` module counts, at the top of a module or inside a
function (a deferred import hides a dependency, it does not remove it); imports
under ``if TYPE_CHECKING:`` never run and do not count.  The rules: an import
points to its own layer or one below; no step imports another step; no import
cycle, however long; a deferred import defers something (its module is not
already loaded by the importer's own top-level imports), so that the only reason
left for one is start-up cost; and ``sandbox/`` imports nothing of the client.
There are no exemptions.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]

# lowest first; a module may import from its own layer and those before it (docs/architecture.md draws them)
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"core"}),  # errors, the environment, the .env state, keys, values, the step protocol
    frozenset({"transport"}),  # the HTTP client and its retries, settings, cookies, redirects, kubectl
    frozenset({"auth"}),  # credentials, Dex's pages, the gateway's signals, the login walk
    frozenset({"model", "render", "load"}),  # payloads and routing; --curl and credential formats; the load engines
    frozenset({"steps"}),  # the modules at the top of scripts/: one per documented step
    frozenset({"commands", "api"}),  # the tasks that chain the steps; the Python library
    frozenset({"app"}),  # the catalog and the program
)
STEPS = "steps"


def modules(root: Path) -> dict[str, Path]:
    """Every module under root/scripts by its name inside the package: ``core.errors``, ``fetch_req``."""
    found = {}
    for path in sorted((root / "scripts").rglob("*.py")):
        parts = list(path.relative_to(root / "scripts").with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _runtime_nodes(tree: ast.AST, *, top_level_only: bool = False) -> list[ast.AST]:
    """Every node that runs (the bodies of ``if TYPE_CHECKING:`` left out); optionally not the function bodies."""
    kept: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        kept.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                pending.extend(child.orelse)
            elif not (top_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))):
                pending.append(child)
    return kept


def _targets(name: str, path: Path, node: ast.AST, known: dict[str, Path]) -> set[str]:
    """The ``scripts`` modules one import statement loads (by package-relative name)."""
    full = ["scripts", *name.split(".")] if name else ["scripts"]
    package = full if path.name == "__init__.py" else full[:-1]
    found: set[str] = set()
    if isinstance(node, ast.ImportFrom):
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else [])) if node.level else node.module or ""
        for alias in node.names:
            found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}".removeprefix("scripts.") in known else base)
    elif isinstance(node, ast.Import):
        found.update(alias.name for alias in node.names)
    inside = {target.removeprefix("scripts").removeprefix(".") for target in found if target == "scripts" or target.startswith("scripts.")}
    return {target for target in inside if target in known and target != name}


@functools.cache
def _import_statements(source: str) -> tuple[list[ast.AST], list[ast.AST]]:
    """A module's import statements that run: everywhere, and those at its top level (each text parsed once a run:
    the tests of the test parse copies of the whole tree, all but one module the same)."""
    tree = ast.parse(source)
    every = [node for node in _runtime_nodes(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    top = [node for node in _runtime_nodes(tree, top_level_only=True) if isinstance(node, (ast.Import, ast.ImportFrom))]
    return every, top


def imports(root: Path, *, where: str = "everywhere") -> dict[str, set[str]]:
    """Each module's imports of other ``scripts`` modules: ``everywhere``, at the ``top`` level, or ``deferred``."""
    known = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        every, top = _import_statements(path.read_text(encoding="utf-8"))
        chosen = {"everywhere": every, "top": top, "deferred": [node for node in every if node not in top]}[where]
        graph[name] = set().union(*(_targets(name, path, node, known) for node in chosen))
    return graph


def layer_of(module: str) -> int:
    """The index in LAYERS of a module: its subpackage, or the steps for a module at the top of scripts/."""
    head, dot, _rest = module.partition(".")
    group = head if dot or module in _packages() else (STEPS if module else "core")  # "": scripts/__init__ (the version)
    for index, members in enumerate(LAYERS):
        if group in members:
            return index
    raise AssertionError(f"scripts/{head} is in no layer: add it to LAYERS in tests/test_layers.py")


def _packages() -> set[str]:
    return {path.name for path in (ROOT / "scripts").iterdir() if (path / "__init__.py").is_file()}


def violations(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Imports that point up a layer, and imports of one step by another."""
    steps = LAYERS.index(frozenset({STEPS}))
    return {
        (importer, imported)
        for importer, targets in graph.items()
        for imported in targets
        if layer_of(imported) > layer_of(importer) or layer_of(importer) == layer_of(imported) == steps
    }


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = {stack.pop()}
            while node not in group:
                group.add(stack.pop())
            if len(group) > 1:
                found.add(frozenset(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _closure(graph: dict[str, set[str]], start: str) -> set[str]:
    """What loading ``start`` loads, itself and its packages included (a submodule's import runs its package)."""
    seen: set[str] = set()
    pending = [start]
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        parents = [".".join(module.split(".")[:cut]) for cut in range(1, module.count(".") + 1)]
        pending.extend([*graph.get(module, ()), *(parent for parent in parents if parent in graph)])
    return seen


def idle_deferrals(root: Path) -> set[tuple[str, str]]:
    """Deferred imports of a module the importer's top-level imports load anyway: they defer nothing."""
    deferred, top = imports(root, where="deferred"), imports(root, where="top")
    return {(importer, imported) for importer, targets in deferred.items() for imported in targets if imported in _closure(top, importer)}


def test_every_module_has_a_layer() -> None:
    for module in modules(ROOT):
        layer_of(module)


def test_every_import_points_down() -> None:
    assert sorted(violations(imports(ROOT))) == [], "imports that point up a layer (or from a step to a step)"


def test_no_import_cycles() -> None:
    assert sorted(map(sorted, cycles(imports(ROOT)))) == [], "import cycles"


def test_a_deferred_import_defers_something() -> None:
    assert sorted(idle_deferrals(ROOT)) == [], "import these at the top of the module: they are loaded with it anyway"


def test_the_sandbox_imports_nothing_of_the_client() -> None:
    for path in sorted((ROOT / "sandbox").rglob("*.py")):
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                named = [node.module or ""] if not node.level else [f"{'.' * node.level}{node.module or ''}"]
            elif isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
            else:
                continue
            assert not any(name == "scripts" or name.startswith(("scripts.", "..scripts", "kfdex")) for name in named), path


def test_every_layer_is_packaged() -> None:
    """pyproject lists each subpackage (setuptools leaves an unlisted one out of the wheel)."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    assert {f"kfdex.scripts.{package}" for package in _packages()} <= listed
    assert {package for members in LAYERS for package in members} - {STEPS} == _packages()


def _copy_of_the_tree(tmp_path: Path) -> Path:
    for path in modules(ROOT).values():
        copy = tmp_path / path.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        ("core/errors.py", "    from ..app.cli import main  # a deferred upward import", ("core.errors", "app.cli")),
        ("auth/signals.py", "from ..model.routing import route", ("auth.signals", "model.routing")),
        ("infer.py", "from . import fetch_req", ("infer", "fetch_req")),
        ("transport/kube.py", "import scripts.commands.doctor", ("transport.kube", "commands.doctor")),
    ],
)
def test_the_contract_fails_on_an_upward_import(tmp_path: Path, module: str, line: str, expected: tuple[str, str]) -> None:
    """A test of the test: one upward import (top level, or inside a function) in a copy of the tree is caught."""
    copy = _copy_of_the_tree(tmp_path)
    target = copy / "scripts" / module
    addition = f"\n\ndef _upward() -> None:\n{line}\n" if line.startswith(" ") else f"\n{line}\n"
    target.write_text(target.read_text(encoding="utf-8") + addition, encoding="utf-8")
    assert violations(imports(copy)) == {expected}


def test_the_contract_fails_on_a_cycle(tmp_path: Path) -> None:
    """A test of the test: two modules of one layer importing each other are a cycle."""
    copy = _copy_of_the_tree(tmp_path)
    target = copy / "scripts" / "core" / "errors.py"
    target.write_text(target.read_text(encoding="utf-8") + "\n\ndef _back() -> None:\n    from .values import shown\n", encoding="utf-8")
    assert cycles(imports(copy)) == {frozenset({"core.errors", "core.values"})}


def test_the_contract_fails_on_a_deferral_that_defers_nothing(tmp_path: Path) -> None:
    """A test of the test: deferring a module the importer loads at its top anyway is caught."""
    copy = _copy_of_the_tree(tmp_path)
    target = copy / "scripts" / "core" / "state.py"
    target.write_text(target.read_text(encoding="utf-8") + "\n\ndef _late() -> None:\n    from .errors import KfDexError\n", encoding="utf-8")
    assert idle_deferrals(copy) - idle_deferrals(ROOT) == {("core.state", "core.errors")}
