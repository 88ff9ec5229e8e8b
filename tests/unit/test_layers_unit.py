"""The design card's import rules, read from the source: imports flow toolkit -> exporters -> runtime, the runtime
never reaches TensorFlow, Keras or tf2onnx, and no two modules import each other (directly or around a loop)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FOLDERS = {"toolkit": "edgecls", "exporters": "edgecls.exporters", "runtime": "edgecls.runtime"}
HEAVY = ("tensorflow", "keras", "tf2onnx")


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join((package, *parts))] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module `name` imports, anywhere in the file (inside functions too), made absolute."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    return out


def _layer(module: str) -> str:
    if module.startswith("edgecls.runtime"):
        return "runtime"
    if module.startswith("edgecls.exporters"):
        return "exporters"
    return "toolkit"


def test_imports_flow_toolkit_to_exporters_to_runtime():
    allowed = {"runtime": {"runtime"}, "exporters": {"runtime", "exporters"}, "toolkit": {"runtime", "exporters", "toolkit"}}
    wrong = []
    for name, path in MODULES.items():
        for target in _imports(name, path):
            if target.startswith("edgecls") and target != "edgecls" and target in MODULES:
                if _layer(target) not in allowed[_layer(name)]:
                    wrong.append(f"{name} imports {target}")
    assert not wrong, wrong


def test_the_runtime_never_imports_tensorflow_keras_or_tf2onnx():
    wrong = [f"{name} imports {target}" for name, path in MODULES.items() if _layer(name) == "runtime"
             for target in _imports(name, path) if target.split(".")[0] in HEAVY]
    assert not wrong, wrong


def test_no_two_modules_depend_on_each_other():
    """No cycle in the module graph, imports inside functions included (package __init__ files, which gather
    their modules' names, left out)."""
    graph = {name: {t for t in _imports(name, path) if t in MODULES and t != name and MODULES[t].name != "__init__.py"}
             for name, path in MODULES.items() if path.name != "__init__.py"}
    assert not _cycles(graph)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
