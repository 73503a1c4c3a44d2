"""The packages' import graph, read statically from the source (the AST), has no circles, and the generic
modules (features, separation, generation) never import the synthetic world.

What counts as an edge: every ``import`` / ``from ... import`` of a module of macs_bench or macs_model, at module
level *and* inside functions (a lazy import is still a dependency: it only hides the circle until the function
runs), but not under ``if TYPE_CHECKING:`` (never executed). ``from pkg import name`` is an edge to
``pkg.name`` when that is a module, else to ``pkg``. A package is not taken to depend on its parent package
(Python runs the parent's ``__init__`` first, but that is not a design dependency). Strings handed to
``importlib.import_module`` (the lazy front doors) are not read.
"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("macs_bench", "macs_model")
GENERIC = ("macs_bench.features", "macs_model.separation", "macs_model.generation")
WORLD = "macs_bench.world"


def module_files(root: Path = REPO) -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    return any(isinstance(n, (ast.Name, ast.Attribute)) and getattr(n, "id", getattr(n, "attr", None))
               == "TYPE_CHECKING" for n in ast.walk(node.test))


def _imports(tree: ast.AST):
    """Import nodes that run at some point (module level or in a function), skipping TYPE_CHECKING blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            stack.append(child)


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    """module -> the project modules it imports (see the module docstring for what counts)."""
    modules = module_files(root)

    def owner(name: str) -> str | None:  # the longest project module a dotted name starts with
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(owner(alias.name) for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            targets.update(owner(f"{base}.{alias.name}") for alias in node.names)
        targets = {t for t in targets if t is not None}
        # importing a.b.c runs a.b's __init__ first: an edge to each package above the target, except the
        # importer's own packages (those are already running when it is imported)
        own = {".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")) + 1)}
        for target in list(targets):
            parts = target.split(".")
            targets.update(p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p in modules)
        graph[name] = {t for t in targets if t not in own}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    return "; ".join(f"{a} -> {', '.join(sorted(graph[a] & set(component)))}" for a in component)


def test_the_graph_sees_lazy_imports_and_skips_type_checking(tmp_path):
    pkg = tmp_path / "macs_bench"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from macs_bench import c\n"
                              "def f():\n    from macs_bench.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from .. import a\nfrom macs_bench.sub import nothing\n")
    (pkg / "c.py").write_text("import macs_bench.a\n")
    (tmp_path / "macs_model").mkdir()
    graph = import_graph(tmp_path)
    assert graph["macs_bench.a"] == {"macs_bench.sub.b", "macs_bench.sub"}  # sub/__init__ runs first
    assert graph["macs_bench.sub.b"] == {"macs_bench.a"}  # its own package is already running
    assert circles(graph) == [["macs_bench.a", "macs_bench.sub.b"]]
    (pkg / "sub" / "__init__.py").write_text("from macs_bench.d import x\n")
    (pkg / "d.py").write_text("from macs_bench.sub.e import y\n")  # runs sub/__init__, which imports d back
    (pkg / "sub" / "e.py").write_text("")
    assert ["macs_bench.d", "macs_bench.sub"] in circles(import_graph(tmp_path))


def test_no_import_circles():
    graph = import_graph()
    found = circles(graph)
    assert not found, "import circles: " + " | ".join(_describe(c, graph) for c in found)


def test_generic_modules_do_not_import_the_world():
    graph = import_graph()
    offenders = sorted(f"{m} -> {t}" for m, targets in graph.items() if m.startswith(GENERIC)
                       for t in targets if t == WORLD or t.startswith(WORLD + "."))
    assert not offenders, "generic modules import the synthetic world: " + "; ".join(offenders)
