"""What `up` and a rollback's re-make (lab/up.py, lab/remake.py) share to make namespaces and read them.

The sysctls a namespace is made with (those written before its links and tables), and the kernel read as it is
against the plan: each namespace's snapshot (side by side, as status reads them), what it holds of the plan, and
how that differs from it.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from netlab.kernel.base import Kernel, Snapshot
from netlab.plan.build import Plan
from netlab.plan.resources import Resource, Sysctl
from netlab.plan.sysctls import when_written
from netlab.realize import nft_written
from netlab.realize.diff import Drift, diff_netns
from netlab.realize.observe import Observed, observe


def netns_sysctls(plan: Plan, names: Iterable[str] | None = None) -> dict[str, list[tuple[str, str]]]:
    """(name, value) of the sysctls each namespace (of ``names``, or every one) is made with."""
    only = set(names) if names is not None else None
    out: dict[str, list[tuple[str, str]]] = {}
    for r in plan.of_kind("sysctl"):
        if (only is None or r.netns in only) and when_written(r.name) == "netns":  # type: ignore[attr-defined]
            out.setdefault(r.netns, []).append((r.name, r.value))  # type: ignore[attr-defined]
    return out


def snapshots(kernel: Kernel, want: dict[str, list[Resource]], whole: Iterable[str],
              also: Iterable[str] = ()) -> dict[str, Snapshot]:
    """The snapshots of the namespaces ``whole`` and ``also`` (read only as far as another's veth needs them), read
    side by side; a namespace not mounted (deleted a moment ago) is left out."""
    full = set(whole)
    snaps = kernel.snapshot_many({ns: ([r.name for r in want.get(ns, []) if isinstance(r, Sysctl)], ns in full)
                                  for ns in sorted(full | set(also)) if kernel.netns_mounted(ns)})
    nft_written.listed(kernel, snaps)  # known until something else is committed there
    return snaps


def drift_of(ns: str, want: dict[str, list[Resource]], snaps: dict[str, Snapshot],
             links: Sequence[Any]) -> tuple[Observed, list[Drift]]:
    """What namespace ``ns`` holds of the plan (its snapshot in ``snaps``), and how that differs from it."""
    planned = {r.key: r for r in want.get(ns, [])}
    observed = observe(snaps[ns], planned, snaps)
    return observed, diff_netns(want.get(ns, []), observed, links)
