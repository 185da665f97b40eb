"""The package's imports follow the pipeline: no cycles between packages, no import back up a stage.

Every ``import`` in every module is parsed (top level and inside functions, ``TYPE_CHECKING``
blocks included). Stages, in data-flow order (see docs/architecture.md)::

    core < rules < benchmarks.probes < models < benchmarks.runs < classifiers < fairness
         < benchmarks.scoring < reports

``core`` is the top-level modules (types, errors, paths, registry, stats, progress, safeio, secrets,
...) and ``engines/`` (generic map/submit, no knowledge of any stage). ``*.commands``, ``cli`` and
``demo`` are the application layer: thin CLI leaves that may import any stage.

Run ``python tests/test_layering.py`` to print the counts quoted in issue notes.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "harmscope"

STAGES: dict[str, int] = {
    "harmscope": 0,  # top-level core modules (types, errors, registry, stats, ...)
    "harmscope.engines": 0,
    "harmscope.rules": 1,
    "harmscope.benchmarks": 2,  # the lazy package __init__ only
    "harmscope.benchmarks.probes": 2,
    "harmscope.models": 3,
    "harmscope.benchmarks.runs": 4,
    "harmscope.classifiers": 5,
    "harmscope.fairness": 6,
    "harmscope.benchmarks.scoring": 7,
    "harmscope.reports": 8,
}
APP = {"harmscope.cli", "harmscope.demo", "harmscope.__main__"}


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(ROOT.rglob("*.py")):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _targets(mod: str, is_pkg: bool, node: ast.Import | ast.ImportFrom, mods: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = mod.split(".") if is_pkg else mod.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in mods else prefix for a in node.names]
    out = []
    for n in names:
        if n.split(".")[0] != "harmscope":
            continue
        while n not in mods and "." in n:
            n = n.rsplit(".", 1)[0]
        out.append(n)
    return out


def import_edges() -> list[tuple[str, str, bool]]:
    """(importer, imported module, inside a function) for every harmscope-internal import."""
    mods = _modules()
    edges = []
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_func = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for dst in _targets(mod, path.name == "__init__.py", node, mods):
                    if dst != mod:
                        edges.append((mod, dst, id(node) in in_func))
    return edges


def stage(mod: str) -> tuple[str, int] | None:
    """(stage package, stage number) of ``mod``; None for the application layer."""
    if mod in APP or mod.rsplit(".", 1)[-1] == "commands":
        return None
    best = ("harmscope", 0) if mod.count(".") == 1 or mod == "harmscope" else None
    for prefix, n in STAGES.items():
        if prefix != "harmscope" and (mod == prefix or mod.startswith(prefix + ".")):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, n)
    assert best is not None, f"{mod} belongs to no stage: add it to STAGES"
    return best


def back_up_imports() -> list[tuple[str, str]]:
    out = set()
    for src, dst, _ in import_edges():
        a, b = stage(src), stage(dst)
        if a is not None and b is None:
            out.add((src, dst))  # a pipeline module importing a CLI module
        elif a is not None and b is not None and b[1] > a[1]:
            out.add((src, dst))
    return sorted(out)


def _sccs(adj: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan; the graph is small, recursion is fine
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(adj.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(adj):
        if v not in index:
            visit(v)
    return out


def _package(mod: str, mods: dict[str, Path]) -> str:
    return mod if mods[mod].name == "__init__.py" else mod.rsplit(".", 1)[0]


def package_cycles() -> list[list[str]]:
    """Cycles between packages (a module's package: ``harmscope.classifiers.judges``, ...)."""
    mods = _modules()
    adj: dict[str, set[str]] = defaultdict(set)
    for src, dst, _ in import_edges():
        if stage(src) is None:  # CLI leaves: nothing imports them (checked by back_up_imports)
            continue
        a, b = _package(src, mods), _package(dst, mods)
        # a package's own __init__ importing its submodules is not a cycle of packages
        if a != b and not b.startswith(a + "."):
            adj[a].add(b)
    return _sccs(adj)


def module_cycles() -> list[list[str]]:
    adj: dict[str, set[str]] = defaultdict(set)
    for src, dst, _ in import_edges():
        adj[src].add(dst)
    return _sccs(adj)


# ---------------------------------------------------------------- tests
def test_the_analyser_sees_imports_of_every_kind(tmp_path):
    tree = ast.parse("import harmscope.types\nfrom harmscope import errors\n"
                     "def f():\n    from harmscope.rules import loader\n")
    mods = {"harmscope.types": Path(), "harmscope.errors": Path(), "harmscope.rules.loader": Path(),
            "harmscope.x": Path()}
    found = [t for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
             for t in _targets("harmscope.x", False, n, mods)]
    assert sorted(found) == ["harmscope.errors", "harmscope.rules.loader", "harmscope.types"]
    assert _sccs({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_every_module_has_a_stage():
    for mod in _modules():
        stage(mod)  # asserts


def test_no_import_runs_back_up_the_pipeline():
    bad = back_up_imports()
    assert not bad, "imports from a later stage into an earlier one:\n" + "\n".join(f"{a} -> {b}" for a, b in bad)


def test_no_import_cycle_between_packages():
    cycles = package_cycles()
    assert not cycles, f"import cycles between packages: {cycles}"


if __name__ == "__main__":
    edges = import_edges()
    mods = _modules()
    biggest = max(mods, key=lambda m: len(mods[m].read_text(encoding="utf-8").splitlines()))
    print(f"internal imports: {len(edges)} ({sum(e[2] for e in edges)} inside functions)")
    print(f"back-up imports: {len(back_up_imports())}")
    for a, b in back_up_imports():
        print(f"  {a} -> {b}")
    print(f"package cycles: {package_cycles()}")
    print(f"module cycles: {len(module_cycles())} {module_cycles()}")
    print(f"largest module: {biggest} ({len(mods[biggest].read_text(encoding='utf-8').splitlines())} lines)")
