"""What a :class:`netlab.Lab` does inside its namespaces: run commands and processes, read logs, inspect, break.

netlab.api.lab holds the lab's lifecycle (up, attach, down, repair),
netlab.api.lab_checks its checks (status, probe, reach, trace); this module the
actions on one pod, node or host, which :class:`~netlab.api.lab.Lab` inherits
from :class:`PodActions`.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, Any, Collection, Sequence

from netlab.api import results as R
from netlab.api.words import InCallersWords, containers_read
from netlab.api.args import (WAIT, check_bool, check_choice, check_command, check_env, check_int, check_no_nul,
                             check_popen_kwargs, check_seconds, check_seconds_or_none, check_str, items, method)
from netlab.api.jsonio import from_json
from netlab.api.pod_process import PodProcess
from netlab.errors import CannotRun, NetnsGone, UsageError
from netlab.kernel.sigpipe import sigpipe_held
from netlab.trace.sections import ALIASES, INSPECT_SECTIONS, section_names

if TYPE_CHECKING:
    from netlab.model.lab import Lab as ModelLab
    from netlab.realize.state import LabState



class PodActions(InCallersWords):
    """The actions of a :class:`~netlab.api.lab.Lab` on its pods, nodes and hosts (a base class of Lab)."""

    if TYPE_CHECKING:  # what Lab gives
        name: str

        def state(self) -> LabState: ...

        @property
        def model(self) -> ModelLab: ...

    def inspect(self, name: str, sections: Collection[str] | None = None) -> R.Inspection:
        """What the tutorials show for a pod, node or host, read from the kernel (``netlab inspect``).

        ``sections``: some of links, addrs, routes, neigh, fdb, bridge, sockets, sysctls,
        iptables, nftables, conntrack, cni, files, or the result's keys for them
        (addresses, neighbours, bridge_ports) (default: all, with conntrack counted;
        asked for by name, its entries are listed too). ``nftables`` maps "ip kube-proxy" to
        kube-proxy's table (:class:`~netlab.api.results.NftTableInfo`) on a node in
        nftables mode, and is empty elsewhere. ``files`` are a node's Flannel
        files, kept in the lab's state directory, or a pod's /etc/resolv.conf and /etc/hosts as its containers
        see them (netlab's in /etc/netns/<lab>-<pod>/, else the host's own); each path maps to where it is kept
        and its content (None: missing). A section the tools could
        not read (iptables-save or nft failing) is empty, and ``unreadable``
        maps it to why.
        """
        from netlab.trace.inspect import inspect
        from netlab.trace.targets import lab_map
        from netlab.api.exec import exec_target
        from netlab.services import flannel_files, netns_files

        with method("lab.inspect"):
            check_str("name", name)
            if sections is not None:  # a str: one section, or several comma-separated (as -s takes them)
                sections = section_names(items("sections", sections, (*INSPECT_SECTIONS, *ALIASES)))
        netns = exec_target(self.state(), self.model, name, gone=True).netns
        is_node = any(n.name == name for n in self.model.nodes)
        is_pod = any(p.name == name for p in self.model.pods)
        if sections is not None and "files" in sections and not (is_node or is_pod):  # asked for: said, not empty
            raise UsageError(f"section files shows a node's files (Flannel's subnet.env, the CNI config) or a pod's "
                             f"(/etc/resolv.conf, /etc/hosts); {name} is neither")
        if sections is not None and "cni" in sections and (self.model.cni == "builtin"
                                                           or not any(p.name == name for p in self.model.pods)):
            raise UsageError("section cni shows a pod's result from its CNI plugins; " + (
                f"lab {self.name} attaches its pods with netlab's builtin wiring (network.cni: builtin)"
                if self.model.cni == "builtin" else f"{name} is not a pod"))
        kernel_sections = None if sections is None else [s for s in sections if s not in ("cni", "files")]
        try:
            data = inspect(netns, lab_map(self.model), kernel_sections)  # [] reads nothing: netns and what
        except NetnsGone as exc:  # deleted since it was looked up: the status it names is this lab's
            from netlab.workload.reconfigure import netns_gone

            raise netns_gone(exc, self.name) from None
        if (sections is None or "files" in sections) and (is_node or is_pod):
            files = flannel_files.read(self.name, name) if is_node else netns_files.seen(netns)
            data["files"] = {path: {"kept": kept, "content": text} for path, (kept, text) in files.items()}
        if (sections is None or "cni" in sections) and self.model.cni != "builtin" \
                and any(p.name == name for p in self.model.pods):
            from netlab.cni.cached import result_of

            data["cni"] = result_of(self.state(), name) or {}
        return from_json(R.Inspection, {"lab": self.name, "name": name, **data})

    def namespaces(self) -> tuple[tuple[str, str], ...]:
        """(name, namespace) of every pod, node and internet host, and the underlay."""
        m = self.model
        return tuple([(n.name, n.netns) for n in m.nodes] + [(p.name, p.netns) for p in m.pods]
                     + list(m.internet_hosts) + [("underlay", m.underlay_netns)])

    # --- inside it -----------------------------------------------------------------------------

    def exec(self, name: str, command: Sequence[str] | str, *, input: str | None = None,
             timeout: float | None = 60.0, check: bool = False,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command in a pod's network and UTS namespaces (a node's, an internet host's or the underlay's),
        as ``netlab exec`` does, and return what it printed. A string runs with ``/bin/sh -c``.

        It returns once the command exits, with what it printed by then: a job it leaves in the background
        (``"kvd --port 7000 &"``) runs on in the pod, nobody's child (``down`` stops it with the lab), and what
        it prints later is lost. To keep it, its output or its exit status, use :meth:`popen`."""
        from netlab.api.exec import exec_target

        with method("lab.exec"):
            check_str("name", name)
            argv = check_command("command", command)
            check_str("input", input, none_ok=True)
            timeout = check_seconds_or_none("timeout", timeout, WAIT)
            check_bool("check", check)
            check_env("env", env)
            check_no_nul(command, argv, env)
        target = exec_target(self.state(), self.model, name)
        with target.opened() as enter:
            return _run_captured(argv, input, timeout, check, env, enter)

    def popen(self, name: str, argv: Sequence[str] | str, **kwargs: Any) -> PodProcess:
        """Start a process in a pod's network and UTS namespaces (a node's, a host's or the underlay's), with
        the pod's ``/etc/netns`` files over ``/etc``, as :meth:`exec` runs a command, and return at once.

        ``argv``: a list, or a string run with ``/bin/sh -c``; ``kwargs``: those of :class:`subprocess.Popen`
        (``stdout=subprocess.PIPE``, ``text=True``, ``env``, ``cwd`` ...), passed on as given (``env`` is checked
        as :meth:`exec`'s), except what would undo the namespace switch, each a UsageError before the lab is read:
        ``preexec_fn`` (popen's own enters the pod), ``user`` (Popen sets it first, and only root may enter a
        namespace: put ``runuser -u USER --`` before the program), ``shell`` (a string argv runs with
        ``/bin/sh -c`` already) and ``args``; a name Popen does not take is one too. The caller owns the process:
        stop it (``terminate()``, ``kill()``) and ``wait()`` for it, or use the returned ``Popen`` (a
        :class:`netlab.api.pod_process.PodProcess`) as a context manager: ``with lab.popen(pod, argv) as srv:``
        stops it when the block ends (SIGTERM, then SIGKILL 5 s later if it is still there) and reaps it, where a
        plain Popen's ``with`` only waits for it to end. Still running when the lab goes down, it is stopped by
        ``down``, which stops every process in the lab's namespaces (SIGTERM, then SIGKILL) before deleting them;
        its ``Popen`` then gives its exit status as any other's.

        A program that cannot be started in the pod raises :class:`netlab.errors.CannotRun` (a UsageError), not
        Popen's FileNotFoundError: its message is ``netlab exec``'s line (``/opt/srv: command not found``), its
        ``returncode`` the status ``exec`` gives (127: no such program; 126: there, not runnable)."""
        from netlab.api.exec import cannot_run, exec_target

        with method("lab.popen"):
            check_str("name", name)
            full = check_command("argv", argv)
            check_popen_kwargs(kwargs)
            check_env("env", kwargs.get("env"))
            check_no_nul(argv, full, kwargs.get("env"))
        target = exec_target(self.state(), self.model, name)
        program = kwargs.get("executable") or full[0]
        with target.opened() as enter:
            # The child enters before exec; its copies of the namespace files close then (close_fds, O_CLOEXEC), so
            # a long-lived process holds no descriptor of the pod's UTS mount or netns file.
            try:
                return PodProcess(full, preexec_fn=enter, **kwargs)
            except OSError as exc:
                if exc.filename is None or exc.filename != program:
                    raise  # not about the program: the fork failed, or the cwd given is not there
                code, line = cannot_run(program, exc, kwargs.get("env"))
                raise CannotRun(line.removeprefix("netlab: "), code) from None

    def break_(self, scenario: str, target: str | None = None, *, wait: float = 60.0) -> R.BreakResult:
        """``netlab break SCENARIO --target NAME``: make one of the catalogue's kernel changes in the running lab,
        the way real clusters break (``lab.break_("vxlan-arp-missing")``); :meth:`repair` puts it back.

        ``break`` is Python's keyword: the trailing underscore is PEP 8's way to use its name. ``target``: the
        node or pod to break (default: the scenario's choice). An unknown scenario, or one this lab cannot
        show (a Service's on a lab without Services), is a UsageError, as the CLI's exit 2; a kernel that
        refuses the change (the lab not as planned where the change goes) an ApplyFailed. The same scenario
        again on the same target, not repaired since, changes nothing: the result's ``already`` is True (its
        ``changes`` empty), as ``netlab break`` says it is broken already; one put back in part by hand since gets
        its missing steps only (``changes``), the others listed in ``in_place``. A lab that is not as planned already
        (:meth:`status` finds differences :meth:`repair` puts right) is broken all the same, as ``netlab break``
        does, and the result's ``warnings`` says so, as its stderr line: what reach, probe and trace show is then
        not this fault's alone. One that ``up --watch`` keeps is broken too, and ``warnings`` says the watcher (its
        pid) repairs it within a second."""
        from netlab.api.internals import faults_before
        from netlab.breaks import catalogue
        from netlab.breaks.quiz import watched_warning
        from netlab.breaks.run import break_lab, broken_already, warn_before

        with method("lab.break_"):
            check_str("scenario", scenario)
            check_choice("scenario", scenario, [s.name for s in catalogue.SCENARIOS])
            check_str("target", target, none_ok=True)
            check_seconds("wait", wait, WAIT)
        if catalogue.BY_NAME[scenario].processes:  # it stops a pod's containers: refused as `netlab break` refuses it
            from netlab.doctor_host import require_capabilities
            from netlab.kernel import caps

            require_capabilities(caps.PROCESSES)
        watched = watched_warning(self.name)  # `up --watch` keeps the lab: it repairs the fault at once
        left_out: list[str] = []  # the containers, when root may not read them (no CAP_SYS_PTRACE)
        before = faults_before(self, left_out=left_out)  # type: ignore[arg-type]  # self is a Lab (PodActions' base)
        done = break_lab(self.name, scenario, target, wait=wait)
        me = f"Lab({self.name!r})"
        # the same break again: the differences are its own, no fault beside it (the CLI does not warn either)
        warnings = [broken_already(self.name, before, f"{me}.status()", f"{me}.repair()")] \
            if warn_before(before, done) else []
        warnings += left_out + ([watched] if watched is not None else [])
        return R.BreakResult(lab=done.lab, scenario=done.scenario, target=done.target, changes=tuple(done.done),
                             warnings=tuple(warnings), already=done.already, in_place=tuple(done.in_place))

    def logs(self, pod: str, container: str | None = None, tail: int | None = None, previous: bool = False) -> str:
        """What a container's current run wrote (stdout and stderr), as ``kubectl logs``; ``previous``: the run
        before it (``--previous``; a UsageError when it has none). ``container`` defaults to the pod's first,
        ``tail`` keeps the last lines only (a negative one: all of them, as kubectl's ``--tail=-1``)."""
        from netlab.api.exec import log_file, log_writer, open_log

        with method("lab.logs"):
            check_str("pod", pod)
            check_str("container", container, none_ok=True)
            if tail is not None:
                check_int("tail", tail)
            check_bool("previous", previous)
        chosen, path = log_file(self.model, pod, container, previous)
        with containers_read():  # its writer root may not read (no CAP_SYS_PTRACE): the CLI's line
            writer = log_writer(self.state(), self.model, pod, chosen)
            with open_log(path, pod, chosen, self.name, previous, writer) as fh:
                data = fh.read()
        text = data.decode(errors="replace")
        if tail is not None and tail >= 0:  # a negative tail: all of it, as kubectl's --tail=-1
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-tail:]) if tail > 0 else ""
        return text


    def cni_log(self, pod: str | None = None) -> R.CniLog:
        """Every CNI plugin call of the lab (or of ``pod``'s), oldest first, as ``netlab cni log -o json``
        shows them: each call's command, environment, stdin (the config the plugin got), stdout, stderr, exit code
        and time taken (:class:`~netlab.api.results.CniCall`). ``pod`` may be a pod taken out of the topology
        since: the log keeps its ADD and DEL. A lab wired by netlab's builtin mode (``network.cni: builtin``) has
        none: a UsageError, as the command's."""
        with method("lab.cni_log"):
            check_str("pod", pod, none_ok=True)
        return from_json(R.CniLog, {"lab": self.name, "pod": pod, "calls": logged_calls(self.name, self.model, pod)})


def logged_calls(lab: str, model: ModelLab, pod: str | None) -> list[dict[str, Any]]:
    """The calls of ``lab``'s CNI log (of ``pod``'s alone), each as ``netlab cni log -o json`` shows it."""
    from netlab.cni.invoke import call_json, logged_pods, read_log
    from netlab.cni.lifecycle import log_path

    if model.cni == "builtin":
        raise UsageError(f"lab {lab} attaches pods with netlab's builtin wiring (network.cni: builtin); "
                         "no CNI plugin was called. `netlab cni` explains how one would be")
    logged = read_log(log_path(lab))
    in_lab = {p.name for p in model.pods}
    calls = [c for c in logged if pod is None or c.get("pod") == pod]
    if pod is not None and pod not in in_lab and not calls:
        # A pod taken out of the topology is gone from the lab, but its sandbox's ADD and DEL stay in the log.
        held = [name for name in logged_pods(logged) if name not in in_lab]
        raise UsageError(f"lab {lab} has no pod {pod!r}, and its CNI log holds no call for one (pods: "
                         f"{', '.join(p.name for p in model.pods) or 'none'}"
                         + (f"; in the log only: {', '.join(held)}" if held else "") + ")")
    return [call_json(c) for c in calls]


def _run_captured(argv: list[str], input: str | None, timeout: float | None, check: bool,
                  env: dict[str, str] | None, enter: Any) -> subprocess.CompletedProcess[str]:
    """Run a command and wait for it alone: its output goes to files, not pipes, since a job it leaves in the
    background inherits them, and a pipe would stay open until that job ends (until the timeout). A program
    that cannot be started is a command that failed, as with ``netlab exec`` and a shell: exit status 127
    (none) or 126 (not runnable), and the CLI's line on stderr."""
    import tempfile

    from netlab.api.exec import cannot_run

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                    stdout=out, stderr=err, env=env, pass_fds=enter.fds, preexec_fn=enter)
        except (OSError, ValueError) as exc:
            if isinstance(exc, OSError) and exc.filename is None:
                raise  # not about the program: the fork itself failed
            code, line = cannot_run(argv[0], exc, env)
            done = subprocess.CompletedProcess(argv, code, "", line + "\n")
        else:
            done = _waited(proc, argv, input, timeout, out, err)
    if check:
        done.check_returncode()
    return done


def _waited(proc: subprocess.Popen[bytes], argv: list[str], input: str | None, timeout: float | None,
            out: Any, err: Any) -> subprocess.CompletedProcess[str]:
    try:
        # The input written as the command reads it, while its timeout runs; a command that exits without
        # reading it all is no error (its status says), and kills no caller (kernel/sigpipe.py).
        with sigpipe_held():
            proc.communicate(None if input is None else input.encode(), timeout=timeout)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    texts = []
    for fh in (out, err):
        fh.seek(0)
        texts.append(fh.read().decode(errors="replace"))
    return subprocess.CompletedProcess(argv, proc.returncode, texts[0], texts[1])
