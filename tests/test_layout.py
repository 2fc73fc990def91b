"""Package layout: the import graph of ``filmcolor`` has no cycles and no upward imports.

The graph is built statically with :mod:`ast`, without importing anything, so a cycle is caught
even when it happens to work at run time (Python tolerates many cycles until someone reorders
imports or adds a module-level use of a half-initialised module).

What counts as an edge ``A -> B`` (both modules inside the package):

* ``import a.b`` and ``from a.b import c`` at module level **and** inside functions or methods
  (a deferred import still ties the two modules together, it only hides the cycle);
* ``from pkg import name`` is an import of ``pkg.name`` when that is a module, else of ``pkg``;
* relative imports are resolved against the importing module's package;
* a package ``__init__`` importing its own submodules is not counted: importing any submodule
  initialises its parents first, so parent -> child edges are how packages work, not a layer
  violation;
* imports under ``if TYPE_CHECKING:`` are not counted: they never run (their ``else:`` does).

Only the named module is an edge target; the parent packages Python initialises on the way are
not, because the rule above already exempts what they import of their own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "filmcolor"

# Graph: importing module -> {imported module: first line number of such an import}.
Graph = dict[str, dict[str, int]]

# Layering rule: these low layers are building blocks and must not depend, directly or through
# other modules, on the high layers that orchestrate them. A name ending in ".*" means the package
# and everything under it; a name that does not exist (yet) simply matches nothing.
LOW_LAYERS = (
    "filmcolor.errors",
    "filmcolor.frames",
    "filmcolor.color.*",
    "filmcolor.io.*",
    "filmcolor.metrics.*",
    "filmcolor.temporal.*",
    "filmcolor.models.*",
)
HIGH_LAYERS = (
    "filmcolor.pipeline",
    "filmcolor.jobs.*",
    "filmcolor.preview",
    "filmcolor.cli",
    "filmcolor.api",
    "filmcolor.__main__",
    "filmcolor.serve.*",
)


# -- Graph construction ---------------------------------------------------------------------------
def _module_names(package_dir: Path) -> dict[str, Path]:
    """Map every module's dotted name to its file; a package is named by its ``__init__``."""
    root = package_dir.name
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [root, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    """True for ``TYPE_CHECKING`` and ``typing.TYPE_CHECKING`` (any module alias)."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, at any depth, skipping ``if TYPE_CHECKING:`` bodies."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)  # the else branch is what runs
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def _nearest_module(name: str, modules: dict[str, Path]) -> str | None:
    """The module ``name`` itself, else its nearest ancestor that is a module, else None."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _targets(
    node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, modules: dict[str, Path]
) -> list[str]:
    """The package modules one import statement names (outside modules are dropped)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
        return [t for t in (_nearest_module(n, modules) for n in names) if t]
    if node.level:
        # A package's own __init__ is the anchor for "."; a plain module's anchor is its parent.
        anchor = importer.split(".") if is_package else importer.split(".")[:-1]
        drop = node.level - 1
        if drop >= len(anchor):  # beyond the top-level package: cannot be one of ours
            return []
        base_parts = anchor[: len(anchor) - drop]
        if node.module:
            base_parts += node.module.split(".")
        base = ".".join(base_parts)
    else:
        base = node.module or ""
    targets = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        target = submodule if submodule in modules else _nearest_module(base, modules)
        if target:
            targets.append(target)
    return targets


def import_graph(package_dir: Path) -> Graph:
    """Build the run-time import graph of the package rooted at ``package_dir``.

    Every module of the package is a node (even one importing nothing); edges point from the
    importing module to the imported one, with the first line where that import appears.
    """
    modules = _module_names(package_dir)
    graph: Graph = {name: {} for name in modules}
    for importer, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _runtime_imports(tree):
            for target in _targets(node, importer, is_package, modules):
                if target == importer:
                    continue
                if is_package and target.startswith(importer + "."):
                    continue  # a package importing its own children (see module docstring)
                line = graph[importer].get(target, node.lineno)
                graph[importer][target] = min(line, node.lineno)
    return graph


# -- Graph analysis -------------------------------------------------------------------------------
def import_cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (iterative Tarjan), sorted.

    Iterative because a recursive walk over a long import chain could hit the recursion limit.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        work = [(start, iter(sorted(graph[start])))]
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components)


def describe_cycle(graph: Graph, component: list[str], package_dir: Path) -> str:
    """One cycle as ``a <-> b`` plus each import inside it, with file and line, to fix it by."""
    members = set(component)
    root = package_dir.parent
    modules = _module_names(package_dir)
    lines = ["import cycle: " + " <-> ".join(component)]
    for importer in component:
        for target, line in sorted(graph[importer].items()):
            if target in members:
                where = modules[importer].relative_to(root)
                lines.append(f"    {importer} -> {target}  ({where}:{line})")
    return "\n".join(lines)


def _matches(module: str, patterns: tuple[str, ...]) -> bool:
    """``pkg.*`` matches ``pkg`` and everything under it; any other pattern matches exactly."""
    for pattern in patterns:
        if pattern.endswith(".*"):
            prefix = pattern[:-2]
            if module == prefix or module.startswith(prefix + "."):
                return True
        elif module == pattern:
            return True
    return False


def upward_imports(graph: Graph, low: tuple[str, ...], high: tuple[str, ...]) -> list[list[str]]:
    """For each low-layer module that reaches a high-layer one, the shortest import chain.

    Reachability, not just direct imports: a low module importing a helper that imports the
    pipeline depends on the pipeline all the same.
    """
    chains = []
    for source in sorted(m for m in graph if _matches(m, low)):
        previous: dict[str, str | None] = {source: None}
        queue = [source]
        hit = None
        while queue and hit is None:  # breadth-first, so the reported chain is the shortest
            nxt = []
            for node in queue:
                for target in sorted(graph.get(node, {})):
                    if target in previous:
                        continue
                    previous[target] = node
                    if _matches(target, high):
                        hit = target
                        break
                    nxt.append(target)
                if hit:
                    break
            queue = nxt
        if hit:
            chain: list[str] = []
            node: str | None = hit
            while node is not None:
                chain.append(node)
                node = previous[node]
            chains.append(chain[::-1])
    return chains


# -- The rules, on the real package ----------------------------------------------------------------
def test_no_import_cycles() -> None:
    """No module imports one that imports it, directly or through others ("no upward import")."""
    graph = import_graph(PACKAGE_DIR)
    cycles = import_cycles(graph)
    report = "\n".join(describe_cycle(graph, c, PACKAGE_DIR) for c in cycles)
    assert not cycles, f"{len(cycles)} import cycle(s) in filmcolor:\n{report}"


def test_low_layers_do_not_import_high_layers() -> None:
    """errors, frames, color, io, metrics, temporal and models never reach the orchestration."""
    chains = upward_imports(import_graph(PACKAGE_DIR), LOW_LAYERS, HIGH_LAYERS)
    report = "\n".join("    " + " -> ".join(chain) for chain in chains)
    assert not chains, f"low layers import high layers:\n{report}"


def test_nothing_imports_the_web_studio() -> None:
    """The studio is a front end: only the command line (``filmcolor serve``) reaches into it."""
    graph = import_graph(PACKAGE_DIR)
    users = sorted(
        m for m, targets in graph.items()
        if not _matches(m, ("filmcolor.serve.*", "filmcolor.cli"))
        and any(_matches(t, ("filmcolor.serve.*",)) for t in targets)
    )
    assert not users, f"modules importing filmcolor.serve: {users}"


# -- The checker itself, on small packages built in tmp_path ---------------------------------------
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    """Write a throwaway package ``pkg`` (file path relative to it -> source) and return it."""
    root = tmp_path / "pkg"
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return root


def test_checker_reports_a_cycle(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from pkg import b\n",
            "b.py": "def f():\n    from .sub import c\n",  # deferred imports still count
            "sub/__init__.py": "",
            "sub/c.py": "import pkg.a\n",
            "clean.py": "import os\nfrom pkg import a\n",  # reaches the cycle but is not in it
        },
    )
    graph = import_graph(root)
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    message = describe_cycle(graph, ["pkg.a", "pkg.b", "pkg.sub.c"], root)
    assert message.splitlines()[0] == "import cycle: pkg.a <-> pkg.b <-> pkg.sub.c"
    assert "pkg.b -> pkg.sub.c  (pkg/b.py:2)" in message


def test_checker_passes_a_clean_package(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            # A package __init__ re-exporting its children is not a cycle with them.
            "__init__.py": "from pkg.core import run\nfrom . import util\n",
            "core.py": (
                "from typing import TYPE_CHECKING\nfrom .util import helper\n"
                "if TYPE_CHECKING:\n    from pkg.app import App\n"
            ),
            "util.py": "import json\n",
            "app.py": "from pkg import core\nfrom pkg import __version__\n",
        },
    )
    graph = import_graph(root)
    assert import_cycles(graph) == []
    assert graph["pkg.core"] == {"pkg.util": 2}  # the TYPE_CHECKING import is not counted
    assert graph["pkg.app"] == {"pkg.core": 1, "pkg": 2}  # a name, not a module -> the package


def test_checker_counts_the_else_of_type_checking(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": (
                "import typing\nif typing.TYPE_CHECKING:\n    from pkg import b\n"
                "else:\n    from pkg import c\n"
            ),
            "b.py": "",
            "c.py": "",
        },
    )
    assert import_graph(root)["pkg.a"] == {"pkg.c": 5}


def test_checker_resolves_relative_imports(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "top.py": "",
            "sub/__init__.py": "from .. import top\n",  # from a package __init__: "." is sub itself
            "sub/x.py": "from . import y\nfrom ..top import name\nfrom .y import thing\n",
            "sub/y.py": "from ... import outside\n",  # beyond the top package: not ours
        },
    )
    graph = import_graph(root)
    assert graph["pkg.sub"] == {"pkg.top": 1}
    assert graph["pkg.sub.x"] == {"pkg.sub.y": 1, "pkg.top": 2}
    assert graph["pkg.sub.y"] == {}


def test_checker_reports_upward_imports_through_others(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "",
            "low/a.py": "from pkg import helper\n",
            "helper.py": "import pkg.high\n",
            "high.py": "from pkg.low import a\n",
            "low/fine.py": "import pkg.helper_free\n",
            "helper_free.py": "",
        },
    )
    chains = upward_imports(import_graph(root), ("pkg.low.*",), ("pkg.high",))
    assert chains == [["pkg.low.a", "pkg.helper", "pkg.high"]]


@pytest.mark.parametrize(
    "pattern, module, expected",
    [
        ("pkg.io.*", "pkg.io", True),
        ("pkg.io.*", "pkg.io.decode", True),
        ("pkg.io.*", "pkg.iox", False),
        ("pkg.cli", "pkg.cli.sub", False),
    ],
)
def test_layer_patterns(pattern: str, module: str, expected: bool) -> None:
    assert _matches(module, (pattern,)) is expected
