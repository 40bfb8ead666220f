"""Which namespaces are the lab's: the state lists them and their tag proves it.

Every namespace carries the lab's tag (a hash of the lab's name, of its
random run id and of its state folder, kernel/netns.py) from before its name
is visible, and the lab's state lists it. A namespace is the
lab's only when both agree, so a look-alike made by hand, or a state file
edited to list someone else's namespace, is left alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, NoReturn, Sequence

from netlab.errors import OwnershipConflict, in_python_words
from netlab.kernel.base import Kernel
from netlab.realize import ownership, tags
from netlab.realize.state import LabState

if TYPE_CHECKING:
    from netlab.plan.build import Plan



KERNEL_LINKS = "kernel_links"  # state.extra: links the kernel put in each new namespace (fallback tunnels)


def kernel_links(state: LabState) -> dict[str, list[str]]:
    """The links the kernel itself put in each of the lab's namespaces: left alone, never the lab's drift."""
    rec = state.extra.get(KERNEL_LINKS)
    return rec if isinstance(rec, dict) else {}


def tag_for(state: LabState) -> str:
    """The tag the lab's namespaces carry: its name's hash, its run's, and the state folder its state records."""
    return tags.state_tag(state.lab, state.run_id, state.extra)


def owned(kernel: Kernel, name: str, tag: str) -> bool:
    """True when namespace ``name`` exists and carries this lab's tag."""
    return kernel.netns_mounted(name) and kernel.read_tag(name) == tag


def namespaces_to_create(kernel: Kernel, plan: Plan, state: LabState, tag: str) -> list[str]:
    """Namespaces of the plan that do not exist yet; stops before any change if a name is taken.

    A name the lab's state lists whose file in /run/netns is an empty placeholder is the lab's own: left by a
    crash between claiming the name and mounting (``intent``), or a namespace of the running lab unmounted by
    hand (``created``; ``umount /run/netns/<name>``, the first half of ``ip netns del``). The placeholder goes
    and the namespace is made again, as after an ``ip netns del``; its containers, left in the old namespace,
    start again in the new one (workload/tasks.py: SANDBOX_REMADE). Only names the state lists, each by its
    name: any other placeholder is someone else's (ownership.collision_message)."""
    out, placeholders = [], []
    tags = kernel.read_tags([name for name in plan.netns if kernel.netns_mounted(name)])  # side by side
    for name in plan.netns:
        if not kernel.netns_exists(name):
            out.append(name)
        elif name in tags and tags[name] == tag:
            continue
        elif state.netns.get(name) in ("intent", "created") and kernel.is_placeholder(name):
            out.append(name)
            placeholders.append(name)
        else:
            _refuse_taken(name, state.lab, ownership.collision_message)
    for name in placeholders:  # every name checked first: a refused run removes nothing
        kernel.remove_placeholder(name)
    return out


def create_netns(kernel: Kernel, name: str, tag: str, sysctls: Sequence[tuple[str, str]], lab: str) -> list[str]:
    """``kernel.create_netns``; a name another process took since :func:`namespaces_to_create` found it free (its
    pin exists: EEXIST, two labs whose namespace names collide up at the same moment) is refused as that check
    refuses one (OwnershipConflict, exit 3), not said as an OS error. Nothing of the other's is touched."""
    try:
        return kernel.create_netns(name, tag, sysctls)
    except FileExistsError:  # the pin's O_EXCL create: the only file create_netns makes
        _refuse_taken(name, lab, ownership.taken_meanwhile)


def _refuse_taken(name: str, lab: str, words: Callable[[str, str], str]) -> NoReturn:
    """Namespace ``name`` of lab ``lab`` is taken: by this very lab, up under another state folder, said as `list`
    and `down --force` say it (tags.StateElsewhere: the command typed, run with that folder; it ended in that
    folder's `down`, which nobody asked for), in the caller's words; else whose it is (``words``)."""
    elsewhere = tags.state_elsewhere(lab)
    if elsewhere is not None:
        raise elsewhere.said_for(api=in_python_words()) from None
    raise OwnershipConflict(words(name, lab)) from None
