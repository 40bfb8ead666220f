"""A lab's lifecycle on the real kernel, with the features every lab has.

The work is in netlab.lab (up, repair, rollback, down, status over the Kernel
protocol); this module binds it to :class:`~netlab.kernel.live.LiveKernel`,
the features every lab has (netlab.features) and the machine's checks
(netlab.doctor). :class:`netlab.api.Lab` and the benchmarks call it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

from netlab.lab import collector

if TYPE_CHECKING:
    from netlab.feature import Feature
    from netlab.kernel.live import LiveKernel
    from netlab.lab.status import StatusResult
    from netlab.lab.teardown import DownResult
    from netlab.lab.up import UpResult
    from netlab.model.lab import Lab
    from netlab.realize.state import LabState

Progress = Callable[[str, int, int], None]


def live_kernel() -> LiveKernel:
    """The real kernel's door, loaded on first use (probe and trace open their own sockets)."""
    from netlab.kernel.live import LiveKernel

    return LiveKernel()


def default_features() -> list[Feature]:
    """The features every lab has, loaded on first use: probe, trace and get never need them."""
    from netlab.features import default_features as features

    return features()


@collector.paused()  # what it loads and builds (the doctor's checks build the plan) is kept to its end (lab/up.py)
def up(lab: Lab, source: str | None = None, progress: Progress | None = None, wait: float = 60.0,
       features: Sequence[Feature] | None = None, reconfigure: bool = False, running: str | None = None
       ) -> UpResult:
    """Create or converge a lab to its topology. Idempotent. ``running``: the run id of the running lab whose
    saved topology ``lab`` is (lab/up.py's): refused once it holds the lock if that run is not up any more.

    First the checks this lab needs from the machine (netlab doctor): a missing
    feature is EnvironmentNotReady (exit 3) before anything changes.
    """
    from netlab import doctor
    from netlab.cni.versions_kept import answers_kept
    from netlab.lab import up as lab_up

    with answers_kept():  # the doctor's check of the CNI plugins, when it runs, given the answers check_conflist got
        answered = check_conflist(lab, source)  # the user's file, not the machine's: before the doctor's checks
        with doctor.required(lab, moot=moot_checks(lab) + answered):
            kernel = live_kernel()
            try:
                return lab_up.up(lab, kernel, default_features() if features is None else features, source, progress,
                                 wait, reconfigure=reconfigure, running=running)
            finally:
                kernel.close()


@collector.paused()
def up_held(lab: Lab, source: str | None = None, features: Sequence[Feature] | None = None) -> UpResult:
    """:func:`up` for a caller that holds the lab's lock (LabLock) already and read ``lab`` from the lab's state
    under it (``netlab impair``): the lab as the lock's previous holder left it, edited, never a copy read before
    the wait (another command's change would be undone)."""
    from netlab import doctor
    from netlab.cni.versions_kept import answers_kept
    from netlab.lab import up as lab_up

    with answers_kept():  # the doctor's check of the CNI plugins, when it runs, given the answers check_conflist got
        answered = check_conflist(lab, source)  # the user's file, not the machine's: before the doctor's checks
        with doctor.required(lab, moot=moot_checks(lab) + answered):
            kernel = live_kernel()
            try:
                return lab_up.up_held(lab, kernel, default_features() if features is None else features, source,
                                       watcher=False)
            finally:
                kernel.close()


def moot_checks(lab: Lab) -> tuple[str, ...]:
    """The doctor's checks this ``up`` of ``lab`` (or ``up --watch``'s apply of its file) does not need: pod-files
    on a read-only /etc/netns when the lab runs with every pod's file there as planned
    (services.lifecycle.nothing_to_write: a repair of its network writes nothing there, and was refused for it).
    Read only where /etc/netns is read-only."""
    from netlab.errors import NetlabError
    from netlab.kernel import features
    from netlab.model.naming import ETC_NETNS
    from netlab.realize.state import load_state
    from netlab.services.lifecycle import nothing_to_write

    if not features.directory(ETC_NETNS).read_only:
        return ()
    try:
        state = load_state(lab.name)
    except NetlabError:  # a corrupt state: up says it, as before
        return ()
    if state is None:
        return ()
    from netlab.realize.attachments import attached_lab
    from netlab.workload.terminal import served

    # the lab as up serves it (lab/up.py's run): a terminal pod whose stopped sandbox's namespace up removed has no
    # files there to find as planned (services/hosts.with_files)
    return ("pod-files",) if nothing_to_write(served(attached_lab(lab, state), state), state) else ()


def check_conflist(lab: Lab, source: str | None) -> tuple[str, ...]:
    """A CNI lab's plugins, asked VERSION as ``netlab validate`` asks them (cni/check.split_problems), before the
    machine's checks: a conflist that does not parse now (``up --lab``, ``impair``: the lab's saved topology, not
    its file), or a plugin of the user's own (in network.cni.binDir, or one that is not Debian's) missing, failing
    VERSION or not speaking the list's cniVersion, is ``netlab validate``'s line for it (the topology's file:line,
    network.cni.conflist), exit 2, as ``validate -t FILE`` says it; not the doctor's ``tool CNI plugins`` line,
    exit 3, which blames the machine (only Debian's plugins missing where the machine keeps them are the machine's:
    the doctor's line says those). Returns ``("cni-plugins",)`` when every plugin answered (the doctor's check of
    them, the same VERSION calls, is not run again), else ()."""
    if lab.cni == "builtin":
        return ()
    from netlab.cni.check import split_problems
    from netlab.errors import NetlabError, Problem, TopologyError
    from netlab.model.load import load_source

    file, machine, *_ = split_problems(lab)
    if not file:
        from netlab.doctor_verdict import pretended_missing  # the doctor's test hook: its check runs, and says it

        return () if machine or "cni-plugins" in pretended_missing() else ("cni-plugins",)
    src = None
    try:
        src = load_source(source) if source is not None else None
    except (NetlabError, OSError, ValueError):  # the file gone or broken since: no line
        pass
    raise TopologyError([Problem(source or f"lab {lab.name}", src.line_of(loc) if src else None, ".".join(loc), msg)
                         for loc, msg in file]) from None


def down(lab_name: str, wait: float = 60.0, progress: Progress | None = None, force: bool = False) -> DownResult:
    """Delete everything the lab's state proves it created. Safe to run twice. Root without the capabilities it
    needs is refused first, in the doctor's line (its sweep reads every process's namespaces: CAP_SYS_PTRACE; it
    had failed halfway with a bare CannotTell), as `netlab down` refuses."""
    from netlab.doctor_host import require_capabilities
    from netlab.kernel import caps
    from netlab.lab import teardown as lab_teardown

    require_capabilities(caps.PROCESSES)
    kernel = live_kernel()
    try:
        return lab_teardown.down(lab_name, kernel, default_features(), wait, progress, force=force)
    finally:
        kernel.close()


def status(state: LabState, kernel: LiveKernel | None = None, features: Sequence[Feature] | None = None
           ) -> StatusResult:
    """Compare the live kernel with the plan of ``state``'s topology (on ``kernel``, closed here, if given), and
    what ``features`` (default: every lab's) say."""
    from netlab.lab import status as lab_status  # the plan's modules: not loaded for a down

    kernel = kernel or live_kernel()
    try:
        return lab_status.status(state, kernel, default_features() if features is None else features)
    finally:
        kernel.close()
