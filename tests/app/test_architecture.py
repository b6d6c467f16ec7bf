"""The house rules, checked on the source: floors import only downward, no import cycles, pages thin.

psl_core  → nothing of ours above it      storage → nothing of ours at all
app       → psl_core, storage             pages   → app, psl_core, storage (never SQL)
Imports inside functions count too: a cycle broken only by a late import is still a cycle a reader
has to untangle.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FLOORS = ("app", "psl_core", "storage", "pages")
ALLOWED = {
    "psl_core": {"psl_core"},
    "storage": {"storage"},
    "app": {"app", "psl_core", "storage"},
    "pages": {"pages", "app", "psl_core", "storage"},
}
SQL_MODULES = {"sqlmodel", "sqlalchemy"}
UI_MODULES = {"streamlit"}


def _modules() -> dict[str, Path]:
    mods = {}
    for floor in FLOORS:
        for path in (REPO / floor).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            mods[name] = path
    return mods


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def _own(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def test_floors_import_only_downward():
    bad = []
    for module, path in MODULES.items():
        floor = module.split(".")[0]
        for name in _imports(path):
            top = name.split(".")[0]
            if top in FLOORS and top not in ALLOWED[floor]:
                bad.append(f"{module} imports {name}")
            if floor in ("psl_core", "storage") and top in UI_MODULES:
                bad.append(f"{module} imports {name}")
            if floor in ("psl_core", "pages") and top in SQL_MODULES:
                bad.append(f"{module} talks SQL through {name}")
    assert bad == []


def test_no_import_cycles_between_our_modules():
    graph = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for name in _imports(path):
            target = _own(name)
            # A package re-exporting its own submodules is not a cycle.
            if target and target != module and not target.startswith(module + "."):
                graph[module].add(target)
    cycles, index, low, stack, on_stack, counter = [], {}, {}, [], set(), [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                cycles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert cycles == []


def test_the_product_never_points_users_outside_its_repository():
    offenders = []
    for path in [*MODULES.values(), REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        text = path.read_text(encoding="utf-8")
        if "../shared" in text or "SPEC.md" in text:
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
