#!/usr/bin/env python3
"""Print netlab's import graph by package; exit 1 on a cycle or on an arrow out of kernel/ upward.

    python scripts/import_graph.py [--modules] [--dot] [--only PACKAGE...]

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

``--only PACKAGE...`` checks only the named packages: cycles among them (of
packages, and of their modules), and the rules of each of them, whatever the
package an arrow goes to. It is for a tree where some packages are still
being untangled: the clean ones stay checked meanwhile.
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


def package_graph(mods: dict[str, set[str]]) -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
    """The package graph, and for each arrow one module import that makes it (the first, in name order)."""
    packages: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], str] = {}
    for mod in sorted(mods):
        packages[package_of(mod)]
        for t in sorted(mods[mod]):
            a, b = package_of(mod), package_of(t)
            if a != b:
                packages[a].add(b)
                why.setdefault((a, b), f"{mod} -> {t}")
    return packages, why


def problems(mods: dict[str, set[str]], only: set[str] | None = None) -> list[str]:
    """Every cycle and broken rule; with ``only``, those among (cycles) or of (rules) these packages."""
    packages, why = package_graph(mods)
    if only is not None:
        mods = {m: {t for t in ts if package_of(t) in only} for m, ts in mods.items() if package_of(m) in only}
        packages = defaultdict(set, {p: ts & only for p, ts in packages.items() if p in only})
    out = []
    for comp in cycles(packages):
        arrows = [why[(a, b)] for a in comp for b in comp if (a, b) in why and b in packages[a]]
        out.append(f"package cycle: {' <-> '.join(comp)} ({'; '.join(arrows)})")
    for comp in cycles(mods):
        out.append(f"module cycle: {' <-> '.join(comp)}")
    for pkg, allowed in ALLOWED.items():
        if only is not None and pkg not in only:
            continue
        for target in sorted({b for (a, b) in why if a == pkg} - allowed):
            out.append(f"{pkg} must not import {target} ({why[(pkg, target)]})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modules", action="store_true", help="print the module graph too")
    ap.add_argument("--dot", action="store_true", help="print the package graph as graphviz dot")
    ap.add_argument("--only", nargs="+", metavar="PACKAGE",
                    help="check only cycles among, and rules of, these packages (e.g. model plan kernel)")
    args = ap.parse_args(argv)
    mods = graph()
    packages, _ = package_graph(mods)
    if args.only:
        unknown = sorted(set(args.only) - set(packages))
        if unknown:
            ap.error(f"no such package under {PKG}/: {', '.join(unknown)} (there are: {', '.join(sorted(packages))})")
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
    found = problems(mods, set(args.only) if args.only else None)
    for line in found:
        print(f"import_graph: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
