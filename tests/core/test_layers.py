"""Imports run one way (docs/architecture.md): no import circle inside optimizer_core, and no computing module
reaches plotly, Streamlit or a view, directly or through another module.

Every ``import`` statement counts, wherever it is: at module level, inside a function (a lazy import is still a
dependency: it runs the first time the function does) and under ``if TYPE_CHECKING``. Registries that resolve
a module by name on first use (``importlib.import_module``: model families, the families whose trees can be cut,
converters, variant passes, the public API's lazy names, the Report's conveniences) are not edges; they are allowed only in the modules listed in
``REGISTRIES``, and each may name only the modules it is declared to reach.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "optimizer_core"
PRESENTATION = ("plotly", "streamlit", "dashboard")  # third-party and sibling packages only views may reach
MAX_LINES = 900  # "no module past ~900 lines" (the developer guide)

# The faces: the views and the entry points people call, allowed to reach presentation. Every other module in
# optimizer_core computes (inputs, variants, measuring, deciding, orchestration) and must not.
FACES = ("optimizer_core", "optimizer_core.cli", "optimizer_core.compat", "optimizer_core.notebook")
VIEWS = "optimizer_core.views"

# module -> the package (or module prefix) the names in its registry may point into
REGISTRIES = {
    "optimizer_core": "optimizer_core",  # the public API's lazy names (optimizer_core/__init__.py)
    "optimizer_core.models": "optimizer_core.models",  # one module per model family
    "optimizer_core.models.trees": "optimizer_core.models",  # the families whose tree ensembles can be cut
    "optimizer_core.converters": "optimizer_core.converters",  # one converter per family
    "optimizer_core.variants": "optimizer_core.variants",  # one module per variant pass
    "optimizer_core.report": "optimizer_core.views",  # Report.write_out, _repr_html_, figures (report._VIEWS)
}


# --------------------------------------------------------------------------- the graph


def modules(root: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's __init__)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imported(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[tuple[str, str | None]]:
    """(module imported from, name imported) for every name of an import statement, relative ones resolved."""
    if isinstance(node, ast.Import):
        return [(alias.name, None) for alias in node.names]
    base = node.module or ""
    if node.level:
        parent = module.split(".") if is_package else module.split(".")[:-1]
        parent = parent[: len(parent) - (node.level - 1)]
        base = ".".join(parent + ([node.module] if node.module else []))
    return [(base, alias.name) for alias in node.names]


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> what its import statements reach: other modules of ``package`` (``from pkg import sub`` reaches
    the submodule) and the top-level name of anything else (``plotly``, ``numpy``)."""
    found = modules(root, package)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in found.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target, attr in _imported(name, is_package, node):
                if attr and f"{target}.{attr}" in found:
                    edges.add(f"{target}.{attr}")
                elif target in found:
                    edges.add(target)
                elif target.split(".")[0] != package:
                    edges.add(target.split(".")[0])
                else:
                    raise AssertionError(f"{name} imports {target}, which is not a module of {package}")
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module (Tarjan), or a module importing
    itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def reach(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Everything ``start`` reaches, each with the module that imports it on one path (to name the path)."""
    via: dict[str, str] = {}
    todo = [start]
    while todo:
        v = todo.pop()
        for w in graph.get(v, ()):
            if w not in via and w != start:
                via[w] = v
                todo.append(w)
    return via


def path_to(via: dict[str, str], start: str, target: str) -> str:
    steps = [target]
    while steps[-1] != start:
        steps.append(via[steps[-1]])
    return " -> ".join(reversed(steps))


def is_face(module: str) -> bool:
    return module in FACES or module == VIEWS or module.startswith(VIEWS + ".")


# --------------------------------------------------------------------------- the checks


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT, PACKAGE)


def test_no_import_cycle_in_optimizer_core(graph):
    found = cycles(graph)
    assert not found, "import circles (every import counts, lazy ones too): " + "; ".join(
        " <-> ".join(c) for c in found)


def test_no_computing_module_reaches_presentation(graph):
    """Nothing below the views imports plotly, Streamlit, the dashboard, a view or an entry point, directly or
    through another module."""
    problems = []
    for module in sorted(graph):
        if is_face(module):
            continue
        via = reach(graph, module)
        bad = sorted(t for t in via if t in PRESENTATION or is_face(t))
        problems += [path_to(via, module, t) for t in bad[:1]]
    assert not problems, "computing modules reaching presentation: " + "; ".join(problems)


def test_registries_are_declared_and_name_only_their_own_modules():
    """A by-name import is not an edge of the graph, so it is allowed only in a declared registry, and a registry
    may name only the modules it is declared to reach (the Report's conveniences: the views)."""
    found = modules(ROOT, PACKAGE)
    problems = []
    for name, (path, _) in found.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        dynamic = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and (
            (isinstance(n.func, ast.Attribute) and n.func.attr == "import_module")
            or (isinstance(n.func, ast.Name) and n.func.id in ("import_module", "__import__")))]
        if dynamic and name not in REGISTRIES:
            problems.append(f"{name} imports a module by name (line {dynamic[0].lineno}) but is not a registry")
        if name in REGISTRIES:
            allowed = REGISTRIES[name]
            named = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                     and n.value.startswith(PACKAGE + ".") and n.value.split(":")[0] in found]
            problems += [f"{name} names {t}, outside {allowed}" for t in named
                         if t != allowed and not t.startswith(allowed + ".")]
    assert not problems, "; ".join(problems)


def test_no_module_is_longer_than_the_guide_allows():
    long = {name: n for name, (path, _) in modules(ROOT, PACKAGE).items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_importing_every_computing_module_loads_no_presentation(graph):
    """The same, at run time: a fresh interpreter imports every computing module and plotly, Streamlit and the
    views stay unloaded (catches what a static look cannot, e.g. a by-name import at import time)."""
    computing = sorted(m for m in graph if not is_face(m))
    code = (
        "import importlib, sys\n"
        f"for name in {computing!r}:\n"
        "    importlib.import_module(name)\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {PRESENTATION!r}"
        f" or m.startswith('{VIEWS}'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


# --------------------------------------------------------------------------- the checker itself


def test_the_checks_find_a_lazy_cycle_and_a_hidden_plotly_import(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n")  # a lazy import closes the circle
    (pkg / "c.py").write_text("from pkg.sub import d\n")
    (pkg / "sub" / "d.py").write_text("import numpy\nfrom ..e import x\n")
    (pkg / "e.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import plotly.graph_objects\nx = 1\n")
    g = import_graph(tmp_path, "pkg")
    assert cycles(g) == [["pkg.a", "pkg.b"]]
    via = reach(g, "pkg.c")
    assert "plotly" in via and path_to(via, "pkg.c", "plotly") == "pkg.c -> pkg.sub.d -> pkg.e -> plotly"
    assert g["pkg.sub.d"] == {"numpy", "pkg.e"}
