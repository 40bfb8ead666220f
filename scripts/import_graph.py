#!/usr/bin/env python3
"""Print netlab's import graph by package; exit 1 on a cycle or on an arrow out of kernel/ upward.

    python scripts/import_graph.py [--modules] [--dot]

Every ``import`` counts, at module level or inside a function (a function-
local import hides a cycle from Python but not from the design), except those
under ``if TYPE_CHECKING:``. Packages are the first level under netlab/
(``netlab.kernel.live`` is in ``kernel``; a top-level module such as
``netlab.errors`` is its own package).

The rules (docs/architecture in ../shared and README "How it is built"):

* no cycle between packages, and none between modules;
* ``kernel`` imports nothing of netlab but ``kernel``, ``plan``, ``model``
  and ``errors``: it is the bottom door, nothing above it may leak in;
* ``model`` and ``plan`` import neither ``kernel`` nor anything above.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = "netlab"
ALLOWED = {
    "kernel": {"kernel", "plan", "model", "errors"},
    "plan": {"plan", "model", "errors"},
    "model": {"model", "errors"},
}


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """netlab modules that ``module`` imports (resolved to the deepest known module)."""
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    is_pkg = path.name == "__init__.py"

    def resolve(name: str) -> str | None:
        while name:
            if name in known:
                return name
            name = name.rpartition(".")[0]
        return None

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == PKG and (target := resolve(alias.name)):
                        out.add(target)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    anchor = module.split(".") if is_pkg else module.split(".")[:-1]
                    anchor = anchor[:len(anchor) - child.level + 1]
                    base = ".".join(anchor + ([child.module] if child.module else []))
                else:
                    base = child.module or ""
                if base.split(".")[0] != PKG:
                    continue
                for alias in child.names:
                    target = resolve(f"{base}.{alias.name}") or resolve(base)
                    if target:
                        out.add(target)
            visit(child)

    visit(tree)
    out.discard(module)
    return out


def graph() -> dict[str, set[str]]:
    base = ROOT
    files = sorted((ROOT / PKG).rglob("*.py"))
    known = {module_name(f, base) for f in files}
    return {module_name(f, base): imports_of(f, module_name(f, base), known) for f in files}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
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

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modules", action="store_true", help="print the module graph too")
    ap.add_argument("--dot", action="store_true", help="print the package graph as graphviz dot")
    args = ap.parse_args(argv)
    mods = graph()
    packages: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], str] = {}
    for mod, targets in mods.items():
        packages[package_of(mod)]
        for t in targets:
            a, b = package_of(mod), package_of(t)
            if a != b:
                packages[a].add(b)
                why.setdefault((a, b), f"{mod} -> {t}")
    if args.dot:
        print("digraph netlab {")
        for a in sorted(packages):
            for b in sorted(packages[a]):
                print(f'  "{a}" -> "{b}";')
        print("}")
    else:
        for a in sorted(packages):
            print(f"{a:10s} -> {', '.join(sorted(packages[a])) or '(nothing)'}")
        if args.modules:
            for mod in sorted(mods):
                print(f"  {mod} -> {', '.join(sorted(mods[mod]))}")
    problems = []
    for comp in cycles(packages):
        arrows = [why[(a, b)] for a in comp for b in comp if (a, b) in why]
        problems.append(f"package cycle: {' <-> '.join(comp)} ({'; '.join(arrows)})")
    for comp in cycles(mods):
        problems.append(f"module cycle: {' <-> '.join(comp)}")
    for pkg, allowed in ALLOWED.items():
        for target in sorted(packages.get(pkg, set()) - allowed):
            problems.append(f"{pkg} must not import {target} ({why[(pkg, target)]})")
    for line in problems:
        print(f"import_graph: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
