"""The layer contract of ``scripts/``: the order written down once, checked on every run.

Every ``import`` of a ``scripts`` module counts, at the top of a module or inside a
function (a deferred import hides a dependency, it does not remove it); imports
under ``if TYPE_CHECKING:`` never run and do not count.  The rules: an import
points to the same layer or one below; no step imports another step; and no
import cycle, however long.  ``KNOWN`` lists what today's tree still breaks: it
may only shrink (a fixed entry left in the list fails too), and anything new fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# lowest first: a module may import from its own layer and the layers before it
LAYERS: tuple[tuple[str, frozenset[str]], ...] = tuple(
    (name, frozenset(modules.split()))
    for name, modules in (
        ("core", "scripts scripts.load errors environment values keys state extras boundary kubecache cookies dexpages "
                 "signals redirects payloads step standalone"),
        ("transport", "gateway settings kube curlscript"),
        ("auth", "credentials dexflow"),
        ("model", "routing answers modelcheck grpcv2 load.basics load.engine load.curlmulti load.rate load.progress load.renewal load.report load.page "
                  "load.sweep load.locust_run load.locustfile"),
        ("steps", "approve authenticate create_token expose_nodeport extract_cookie fetch_req infer model_info "
                  "resolve_ingress resolve_model"),
        ("commands", "init login logout doctor status profiles credential_formats load_tasks sandbox_tasks sandbox_record "
                     "scripts.api api.pipelines"),
        ("application", "catalog cli"),
    )
)  # fmt: skip

# What the tree still breaks (importer, imported), all deferred imports today: each to be removed, never added to.
KNOWN: frozenset[tuple[str, str]] = frozenset()
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()


def short(module: str) -> str:
    """``scripts.dexflow`` -> ``dexflow``; the packages keep their full names."""
    return module if module in ("scripts", "scripts.load", "scripts.api") else module.removeprefix("scripts.")


def modules(root: Path) -> dict[str, Path]:
    """Every module under root/scripts by its dotted name."""
    found = {}
    for path in sorted((root / "scripts").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that runs: the bodies of ``if TYPE_CHECKING:`` are left out."""
    kept: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        kept.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                pending.extend(child.orelse)
            else:
                pending.append(child)
    return kept


def imports(root: Path) -> dict[str, set[str]]:
    """Each module's imports of other ``scripts`` modules (short names), top level and deferred alike."""
    known = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else [])) if node.level else node.module or ""
                for alias in node.names:
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[short(name)] = {short(target) for target in targets if target in known and target != name}
    return graph


def layer_of(module: str) -> int:
    for index, (_name, members) in enumerate(LAYERS):
        if module in members:
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layers.py")


def violations(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Imports that point up, and imports of one step by another."""
    steps = dict(LAYERS)["steps"]
    return {
        (importer, imported)
        for importer, targets in graph.items()
        for imported in targets
        if layer_of(imported) > layer_of(importer) or (importer in steps and imported in steps)
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


def test_every_module_has_a_layer() -> None:
    for module in imports(ROOT):
        layer_of(module)


def test_every_import_points_down() -> None:
    found = violations(imports(ROOT))
    assert sorted(found - KNOWN) == [], "imports that point up a layer (or from a step to a step)"
    assert sorted(KNOWN - found) == [], "fixed: remove these from KNOWN in tests/test_layers.py"


def test_no_import_cycles() -> None:
    found = cycles(imports(ROOT))
    assert sorted(map(sorted, found - KNOWN_CYCLES)) == [], "import cycles"
    assert sorted(map(sorted, KNOWN_CYCLES - found)) == [], "fixed: remove these from KNOWN_CYCLES in tests/test_layers.py"


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        ("errors.py", "    from .cli import main  # a deferred upward import", ("errors", "cli")),
        ("signals.py", "from .gateway import Gateway", ("signals", "gateway")),
    ],
)
def test_the_contract_fails_on_an_upward_import(tmp_path: Path, module: str, line: str, expected: tuple[str, str]) -> None:
    """A test of the test: one upward import (top level, or inside a function) in a copy of the tree is caught."""
    for path in modules(ROOT).values():
        copy = tmp_path / path.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    target = tmp_path / "scripts" / module
    addition = f"\n\ndef _upward() -> None:\n{line}\n" if line.startswith(" ") else f"\n{line}\n"
    target.write_text(target.read_text(encoding="utf-8") + addition, encoding="utf-8")
    assert expected in violations(imports(tmp_path)) - violations(imports(ROOT))


def test_the_contract_fails_on_a_cycle(tmp_path: Path) -> None:
    """A test of the test: two modules of one layer importing each other are a cycle."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "__init__.py").write_text("")
    (scripts / "errors.py").write_text("def f() -> None:\n    from .values import x\n")
    (scripts / "values.py").write_text("from .errors import f\nx = 1\n")
    assert cycles(imports(tmp_path)) == {frozenset({"errors", "values"})}
