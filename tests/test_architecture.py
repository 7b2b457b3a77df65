"""pyapp's shape, read from its source: no import cycle, one concept per module stated first, layers import downward."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pyapp"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def imports(module: str) -> set[str]:
    """The pyapp modules ``module`` imports anywhere: at the top, inside functions, under TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "pyapp":
            found |= {a.name for a in node.names if a.name in MODULES}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pyapp."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("pyapp.")}
    return found - {module}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan).

    >>> cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    [['a', 'b']]
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle() -> None:
    """No module imports, even lazily or for types only, one that imports it back."""
    graph = {m: imports(m) for m in MODULES}
    assert cycles(graph) == []


def test_the_checker_finds_a_cycle() -> None:
    """The check above can fail: a lazy import back from notebook to model is a cycle."""
    graph = {m: imports(m) for m in MODULES}
    graph["notebook"] = graph["notebook"] | {"model"}
    assert [c for c in cycles(graph) if {"model", "notebook"} <= set(c)]


@pytest.mark.parametrize("module", ["__init__", *MODULES])
def test_each_module_states_its_concept_first(module: str) -> None:
    """A module's docstring opens with one line saying what it is for."""
    doc = ast.get_docstring(ast.parse((PACKAGE / f"{module}.py").read_text()))
    assert doc, f"pyapp/{module}.py has no docstring"
    first = doc.splitlines()[0]
    assert len(first.split()) >= 3, first


def layers() -> dict[str, tuple[int, str]]:
    """Each pyapp module's layer (its height, and its side where two layers share one: images | models), as
    docs/architecture.md draws them."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    picture = text.split("```")[1]
    rows = [line.split() for line in picture.splitlines() if line.split()[:1] and line.split()[0].isalpha()]
    names = ("training", "classify", "images", "tensors", "runtime", "base")
    found: dict[str, tuple[int, str]] = {}
    for words in rows:
        if words[0] not in names:
            continue
        height = len(names) - names.index(words[0])
        side = words[0]
        for word in words[1:]:
            if word == "│":
                continue
            if word == "models":
                side = "models"
                continue
            found[word] = (height, side)
    return found


def test_architecture_doc_places_every_module() -> None:
    """docs/architecture.md's picture names each module of pyapp/ once, and no module that is not there."""
    assert sorted(layers()) == sorted(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_only_downward(module: str) -> None:
    """A module imports from its own layer or those below, and images and models not from each other."""
    where = layers()
    height, side = where[module]
    for dep in sorted(imports(module)):
        dep_height, dep_side = where[dep]
        assert dep_height <= height, f"{module} ({side}) imports {dep} ({dep_side}), a layer above it"
        if dep_height == height and {side, dep_side} == {"images", "models"}:
            raise AssertionError(f"{module} ({side}) imports {dep} ({dep_side}): images and models are apart")
