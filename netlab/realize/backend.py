"""Which iptables backend a lab's rules are in (legacy or nft): part of the lab.

A lab's backend is chosen when its first ``up`` makes it (``NETLAB_IPTABLES``,
else what the machine's ``iptables`` is: kernel/iptables.machine_backend) and
recorded in its state (``extra.iptables``). Every later command acts on that
backend (kernel/iptables.use), whatever the machine's ``iptables`` alternative
says by then: the other backend must hold nothing of the lab (status says what
it holds, up takes it away). ``up --reconfigure`` moves a lab to the machine's
backend of now. A lab an older netlab made, without the record, is in the
backend that holds its nodes' rules (the machine's, when that cannot tell).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from netlab.errors import NetlabError
from netlab.kernel import iptables

if TYPE_CHECKING:
    from netlab.realize.state import LabState

RECORD = "iptables"


def recorded(state: LabState) -> str:
    """The backend the state records ("" none: an older netlab's lab, or one not yet made)."""
    rec = state.extra.get(RECORD)
    return rec if rec in iptables.BACKENDS else ""


def of_lab(state: LabState) -> str:
    """The lab's backend: recorded, else the one its nodes' rules are in, else the machine's."""
    rec = recorded(state)
    if rec:
        return rec
    try:
        nodes = [n.netns for n in state.resolved().nodes if state.netns.get(n.netns) == "created"]
    except NetlabError:
        nodes = []
    for netns in nodes[:1]:
        held = iptables.holding(netns)
        if held:
            return held
    return iptables.machine_backend()


_found: dict[tuple[str, str], str] = {}  # (lab, run id) -> the backend of a lab without the record


def act_on(state: LabState) -> None:
    """Make this process's iptables commands act on the lab's backend (the machine's when it cannot be told
    here: iptables missing, which the command that needs it says)."""
    key = (state.lab, state.run_id)
    try:
        backend = recorded(state) or _found.get(key) or of_lab(state)
    except NetlabError:
        backend = ""
    if not recorded(state) and backend:
        _found[key] = backend
    iptables.use(backend)
    settings()


def settings() -> None:
    """The settings that pick how netlab writes a lab's rules, checked before a command changes anything (one line,
    EnvironmentNotReady, exit 3): NETLAB_IPTABLES (iptables.use) and NETLAB_NFT, which was read only by the first
    nft transaction, after impair had recorded its loss, and failed its rollback too (QA q28 5)."""
    from netlab.kernel import nft

    iptables.env_choice()
    nft.mode()


def choose(state: LabState, fresh: bool, reconfigure: bool) -> str:
    """The backend an ``up`` makes the lab in, recorded in ``state``: a new lab's and ``--reconfigure``'s is the
    machine's of now; a running lab keeps its own."""
    backend = iptables.machine_backend() if fresh or reconfigure else of_lab(state)
    state.extra[RECORD] = backend
    iptables.use(backend)
    settings()
    return backend


def differs(state: LabState, move: Callable[[], str]) -> str | None:
    """A line saying that the lab's backend is not the one the machine would choose now, or None. ``move()``: the
    `up --reconfigure` that moves it, in the caller's words (netlab.api.running.move_way, which tells a lab made
    from a dict, from a file or the built-in default apart, as status chooses its repair)."""
    try:
        lab, machine = of_lab(state), iptables.machine_backend()
    except NetlabError:
        return None
    if lab == machine:
        return None
    why = "NETLAB_IPTABLES is" if iptables.env_choice() else "iptables now points at"
    return (f"lab {state.lab} made with iptables-{lab}; {why} {machine} (netlab keeps using iptables-{lab} for "
            f"this lab; `{move()}` moves it to iptables-{machine})")


def foreign_drift(table: str, text: str | None, plugins: bool) -> list[str]:
    """What the backend the lab is not in holds in ``table``: all of it the lab's to take away (every chain, the
    built-in chains' rules, a policy not ACCEPT), but a CNI plugin's chains and the jumps to them on a node where
    plugins run (a plugin writes with the machine's ``iptables``, whichever that is)."""
    from netlab.realize.netfilter import BUILTIN_CHAINS, parse_save
    from netlab.realize.netfilter_drift import PLUGIN_PREFIX, is_plugin_jump

    tab = parse_save(text or "", table)
    out = [f"policy of {c} is {p}, want ACCEPT" for c, p in tab.policies.items() if p != "ACCEPT"]
    for chain in tab.chains:
        if chain in BUILTIN_CHAINS:
            out += [f"extra rule: {line}" for line in tab.of(chain) if not (plugins and is_plugin_jump(line))]
        elif not (plugins and chain.startswith(PLUGIN_PREFIX)):
            out += [f"extra chain: {chain}"] + [f"extra rule: {line}" for line in tab.of(chain)]
    return out


def foreign_payload(table: str, text: str | None, plugins: bool) -> str | None:
    """An ``iptables-restore --noflush`` payload that takes away what :func:`foreign_drift` reports (None:
    nothing to take away): built-in chains' rules deleted, policies ACCEPT, the chains flushed, then deleted."""
    from netlab.realize.netfilter import BUILTIN_CHAINS, parse_save
    from netlab.realize.netfilter_drift import PLUGIN_PREFIX, is_plugin_jump

    if not foreign_drift(table, text, plugins):
        return None
    tab = parse_save(text or "", table)
    chains = [c for c in tab.chains if c not in BUILTIN_CHAINS and not (plugins and c.startswith(PLUGIN_PREFIX))]
    lines = [f"*{table}"]
    lines += [f":{c} ACCEPT [0:0]" for c, p in tab.policies.items() if p != "ACCEPT"]
    lines += [f":{c} - [0:0]" for c in chains]  # with --noflush: flushes it
    for builtin in BUILTIN_CHAINS:
        lines += ["-D" + line[2:] for line in tab.of(builtin) if not (plugins and is_plugin_jump(line))]
    lines += [f"-X {c}" for c in chains]
    return "\n".join(lines + ["COMMIT", ""])
