"""The pytest plugin's labs (netlab.pytest_plugin's fixtures and hooks use these): every lab one pytest
process brings up, made with a unique name and taken down once (:class:`_Registry`), and the labs the tests
of one scope share (:class:`_Shared`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from netlab import signals
from netlab.api.words import stopped
from netlab.pytest_artifacts import down_by, failed as _failed, failed_up, failed_up_folder, read_going_down
from netlab.pytest_topology import unique_name
from netlab.realize import owner

if TYPE_CHECKING:
    from netlab.api import Lab, TopologyInput
    from netlab.model.lab import Lab as ModelLab

SKIP_PREFIX = "netlab: "


def _skip(reason: str) -> NoReturn:
    """Skip the test that asked for the lab, reported at the test's line (as pytest reports a fixture's skip):
    netlab_factory(...) is called in the test's body, where a plain pytest.skip names the line that raised it,
    this file's."""
    exc = pytest.skip.Exception(reason)
    exc._use_item_location = True  # what pytest's own fixture runner sets for a skip at a fixture's setup
    raise exc


def _plugins(lab: ModelLab) -> tuple[str, ...]:
    """The CNI plugins a lab runs, with the folders they are looked for in (CNI_PATH): none for a builtin lab."""
    if lab.cni == "builtin":
        return ()
    from netlab.cni.check import wanted
    from netlab.cni.conf import bin_dirs

    return (*(f"{kind}@{version}" for kind, version in wanted(lab)), ":".join(bin_dirs(lab)))


@contextlib.contextmanager
def _calls_kept(folder: Path | None) -> Iterator[list[dict[str, Any]]]:
    """The plugin calls of a CNI lab's up (``folder``: where a failed one's are written), kept in memory: none for a
    lab whose pods no plugin attaches (no CNI module is loaded for it)."""
    if folder is None:
        yield []
        return
    from netlab.cni import calls_kept

    with calls_kept.kept(f"this run's calls: {folder / 'cni-calls.json'}") as calls:
        yield calls


class _Shared:
    """Labs shared by the tests of one scope, keyed by topology and name."""

    def __init__(self, registry: _Registry, scope: str = "module"):
        self.registry = registry
        self.scope = scope
        self.labs: dict[str, Lab] = {}
        self.skips: dict[str, str] = {}
        self.failures: dict[str, str] = {}  # the line of each lab whose up failed the setup of the scope's first test
        self.users: dict[str, list[pytest.Item]] = {}

    def get(self, topology: TopologyInput, name: str | None, item: pytest.Item) -> Lab:
        key = json.dumps([os.fspath(topology) if isinstance(topology, os.PathLike) else topology, name],
                         sort_keys=True, default=str)
        if key in self.skips:
            _skip(self.skips[key])
        if key in self.failures:  # its up failed at an earlier test's setup: said again, not tried again
            pytest.fail(self.failures[key], pytrace=False)
        if key not in self.labs:
            try:
                self.labs[key] = self.registry.bring_up(topology, name, 60.0, item=item)
            except pytest.skip.Exception as exc:
                self.skips[key] = str(exc.msg)
                raise
            except pytest.fail.Exception as exc:  # a container that could not start, a plugin's failed ADD
                self.failures[key] = f"{exc.msg} (at the setup of {item.nodeid}; not tried again for this {self.scope})"
                raise
        lab = self.labs[key]
        if lab._down:  # a test of the scope called its down(): the plugin's to take down, after the scope's last
            pytest.fail(f"netlab: lab {lab.name}, which the tests of this {self.scope} share, is down: "
                        f"{down_by(item.config, lab)}; the plugin takes a netlab_lab down after the last test of its "
                        "scope: a test does not call its down() (use netlab_factory for a lab of the test's own)",
                        pytrace=False)
        return lab

    def close(self) -> None:
        for lab in self.labs.values():
            failed = any(_failed(item) for item in self.users.get(lab.name, []))
            self.registry.take_down([lab], failed=failed)


class _Registry:
    """Every lab this pytest process brought up: made with unique names, taken down once."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.live: dict[str, Lab] = {}
        self.kept: list[str] = []
        self.retried: set[str] = set()  # labs whose take-down failed: not kept, taken down again by close()
        self.machine_ok: set[tuple[frozenset[str], tuple[str, ...]]] = set()

    def bring_up(self, topology: TopologyInput, name: str | None, wait: float, raising: bool = False,
                 item: pytest.Item | None = None) -> Lab:
        """The lab, up; a Ctrl-C (or SIGTERM) meanwhile is raised as itself, also where it landed as a run's first
        lab loads netlab's models (doctor's import, the topology's): pydantic, building a validator then, wraps it
        in a SchemaError of its own, which failed the test with a page of pydantic's internals while the run went
        on (exit 1), as Lab.up raises it (netlab.api.words.stopped); or a finalizer swallowed it (exit 0)."""
        with stopped():
            return self._bring_up(topology, name, wait, raising, item)

    def _bring_up(self, topology: TopologyInput, name: str | None, wait: float, raising: bool,
                  item: pytest.Item | None) -> Lab:
        with signals.unswallowed():  # a run's first lab loads the models here: a Ctrl-C a finalizer swallowed
            from netlab import doctor
            from netlab.api import Lab
            from netlab.api.lifecycle import check_conflist
            from netlab.cni.versions_kept import answers_kept
            from netlab.errors import ApplyFailed, EnvironmentNotReady, TopologyError, netlab_command
            from netlab.pytest_topology import fail, load

            # The topology first: a mistake in it is the test's, with or without root.
            loaded = load(topology, name, raising)
            loaded = load(topology, unique_name(name or loaded.lab.name, loaded), raising)
        if os.geteuid() != 0:
            _skip(f"{SKIP_PREFIX}needs root: a lab is made of network namespaces (run pytest with sudo)")
        with answers_kept():  # each CNI plugin asked VERSION once: here, not again by the doctor's check nor up's
            # A CNI plugin of the user's own that is missing or fails VERSION is the topology's problem, as `netlab
            # validate` and `up` say it (exit 2): the test errors, it is not a machine's to skip
            said = None
            try:
                check_conflist(loaded.lab, loaded.source)
            except TopologyError as exc:
                if raising:
                    raise
                said = str(exc)
            if said is not None:
                fail(said)  # outside the except block: no "during handling of the above exception"
            # What the machine passed: the doctor's kinds of check, and for a CNI lab the plugins asked (another lab's
            # chain may name one of Debian's that this machine lacks: its own skip, not up's error)
            key = (frozenset(doctor.needs(loaded.lab)), _plugins(loaded.lab))
            if key not in self.machine_ok:
                try:
                    doctor.require_for(loaded.lab)
                except EnvironmentNotReady as exc:
                    _skip(f"{SKIP_PREFIX}this machine cannot run the lab ({' / '.join(str(exc).splitlines())}); "
                                f"`{netlab_command('doctor')}` says how to fix it")
                self.machine_ok.add(key)
            calls_at = failed_up_folder(item, loaded.lab.name) if loaded.lab.cni != "builtin" else None
            calls: list[dict[str, Any]] = []
            try:
                # the state records this process (a SIGKILL-ed run's labs are told from others'); a CNI lab's plugin
                # calls are kept: an up a plugin failed is rolled back with the lab's log of them
                with owner.claimed(), _calls_kept(calls_at) as calls:
                    lab = Lab.up_loaded(loaded, wait=wait)
                # The plugin's lab: a test's `with netlab_lab as lab:` leaves it up (as a with block leaves an attached
                # lab up); it took down the lab a scope's tests share, and the next test met a bare "lab X is not up".
                lab.owned = False
                self.live[lab.name] = lab  # from here on the session's end takes it down, whatever stops the run
            except BaseException as exc:
                self._left_by_up(loaded.lab.name, exc)
                if not isinstance(exc, ApplyFailed) or calls_at is None or item is None:  # a builtin lab's: as raised
                    raise
                said = failed_up(item, loaded.lab.name, exc, calls, calls_at)  # the test's error: its one line
            else:
                said = None
            if said is not None:
                fail(said)  # outside the except block: no "during handling of the above exception"
        failed = lab.last_up.failed if lab.last_up is not None else ()
        if failed:
            # A container that could not start (its command missing, not executable): `netlab up` leaves such a
            # lab up and exits 1; a test would run against a workload that is not the one asked for. The
            # fixture errors out at setup with up's lines, as an up error is reported, and the lab goes down.
            said = "; ".join(failed)
            if item is not None:  # the test's failure dump: the lab as up left it, read before it goes down
                read_going_down(item, lab)
            try:
                lab.down()
            except Exception as exc:  # noqa: BLE001 - said with the failure; the session's end tries again
                self.retried.add(lab.name)
                said += f" (taking the lab down failed too: {exc})"
            else:
                self.live.pop(lab.name, None)
                said += " (the lab is taken down)"
            pytest.fail(f"netlab: lab {lab.name}: {said}", pytrace=False)
        return lab

    def _left_by_up(self, name: str, exc: BaseException) -> None:
        """An up that raised (a Ctrl-C or SIGTERM once its namespaces were made, even after the lab was up, as
        up_loaded returned; a rollback that failed): the lab it left, if its state proves this process made it
        (the owner record up writes from its first write on, for a fresh lab only). It goes down now, after an
        error; after a stop signal at the session's end (close(), with further signals ignored). A lab that
        was up before, someone else's, records no owner of ours and is left alone; one whose rollback removed
        it has no state."""
        from netlab.api import Lab
        from netlab.errors import NetlabError
        from netlab.realize.state import load_state

        with signals.held():  # a second Ctrl-C waits until the lab is recorded
            try:
                state = load_state(name)
            except NetlabError:  # a state not readable proves nothing: `netlab list` names it
                return
            record = owner.of(state.extra) if state is not None else None
            me = owner.identity(os.getpid())
            if record is None or me is None or not owner.same_process(record, me):
                return
            lab = Lab(name)
            self.live[name] = lab
        if not isinstance(exc, Exception):
            return  # the run stops: close() takes it down
        try:
            lab.down()
        except Exception as err:  # noqa: BLE001 - said with the up's error; the session's end tries again
            self.retried.add(name)
            exc.add_note(f"netlab: taking lab {name} down failed too: {err}")
        else:
            self.live.pop(name, None)
            exc.add_note(f"netlab: lab {name}, which the up left, is taken down")

    def take_down(self, labs: list[Lab], failed: bool) -> None:
        errors = []
        for lab in labs:
            if lab.name not in self.live:
                continue
            if failed and self.config.getoption("netlab_keep"):
                self.kept.append(lab.name)
                del self.live[lab.name]
                continue
            # A lab leaves the registry once it is down: one whose down failed, or was interrupted (Ctrl-C), is
            # tried again at the end of the session (close()).
            try:
                lab.down()
            except Exception as exc:  # noqa: BLE001 - the others still go down; reported below
                errors.append(f"{lab.name}: {exc}")
                self.retried.add(lab.name)
            else:
                self.live.pop(lab.name, None)
        if errors:
            raise RuntimeError("netlab: could not take down " + "; ".join(errors))

    def close(self) -> None:
        """The end of the session: whatever is still up (an interrupted run) goes down."""
        labs = list(self.live.values())
        # a second Ctrl-C, or the SIGTERM a CI runner sends after its SIGINT, waits for it
        with signals.handled(signal.SIG_IGN):
            for lab in labs:
                try:
                    lab.down()
                except Exception:  # noqa: BLE001 - best effort at the very end; the test already reported
                    pass
        self.live.clear()
