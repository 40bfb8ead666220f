"""The features' start_again (no root): a rollback that makes a pod again (lab/remake.py) starts in it what ran in it
before the run, and nothing elsewhere. Services, impairments and CNI had none, and fell back to their lab-wide
start: a rollback rewrote every pod's resolv.conf and hosts (one edited by hand elsewhere too), set every
impaired interface's qdiscs again (one a user had changed by hand elsewhere too) and CHECKed, then attached again,
every CNI pod. tests/integration/test_remake_features_live.py checks the same with real namespaces and qdiscs."""

from __future__ import annotations

from test_cni_lifecycle import world  # noqa: F401 - the CNI lab's fixture

from netlab.cni import lifecycle as cni
from netlab.feature import ModuleFeature, running_of, start_again, stop_made
from netlab.impair import lifecycle as impair
from netlab.kernel import tc
from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.realize import state as state_mod
from netlab.services import hosts, lifecycle as services, netns_files


class State:
    """What the features use of a lab's saved state."""

    def __init__(self, lab: str):
        self.lab, self.extra = lab, {}
        self.removed_files: list[str] = []

    def save(self, best_effort: bool = False) -> bool:
        return True


def two_pods(**impairs):
    return resolve(Topology.model_validate({
        "name": "rs", "nodes": [{"name": "n1", "impair": {"cni0": {"rate": "30mbit"}}}],
        "pods": [{"name": "a", "node": "n1", "impair": {"eth0": {"rate": "20mbit"}}},
                 {"name": "b", "node": "n1", "impair": {"eth0": {"delay": "5ms"}}}],
        "services": [{"name": "s", "selector": {"app": "a"}, "ports": [{"port": 80}]}]}))


def test_services_write_only_the_files_of_the_pods_made_again(tmp_path, monkeypatch):
    """Pod a's hosts file edited by hand (netlab's line kept: still netlab's), pod b made anew by a run that a
    rollback took back: b's files are written again, a's stays as edited (the lab-wide start rewrote it)."""
    monkeypatch.setattr(netns_files, "ETC_NETNS", str(tmp_path / "etc-netns"))
    lab, state = two_pods(), State("rs")
    feature = ModuleFeature(services)
    feature.start(lab, state)
    a, b = (lab.pod(p) for p in "ab")
    edited = netns_files.read(netns_files.file_path(a.netns, hosts.KIND)) + "10.9.9.9\tby-hand\n"
    with open(netns_files.file_path(a.netns, hosts.KIND), "w") as fh:
        fh.write(edited)
    was = running_of(feature, state, [b.netns])
    feature.stop(state, [b.netns])  # up stops b to make it anew, and deletes its namespace
    assert not any(p.startswith(netns_files.netns_dir(b.netns)) for p in _files(tmp_path))
    stop_made(feature, state, [b.netns])
    out = start_again(feature, lab, state, [b.netns], was)
    assert out.actions == [f"wrote {netns_files.file_path(b.netns, k)}" for k in ("resolv", "hosts")]
    assert netns_files.read(netns_files.file_path(a.netns, hosts.KIND)) == edited
    assert netns_files.read(netns_files.file_path(b.netns, hosts.KIND)) == hosts.hosts_file(lab.name, b)
    assert was == {b.netns: ["resolv", "hosts"]}
    assert services.drift(lab, state) == [f"hosts: {netns_files.file_path(a.netns, hosts.KIND)} is different (pod a "
                                          "would not get the kubelet's hosts file); up writes it again"]


def _files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_impairments_are_set_again_only_on_the_interfaces_of_the_pods_made_again(monkeypatch):
    """cni0 and pod a's eth0 shaped otherwise by hand (drift, which the next `up` repairs), pod b made again by a
    rollback: only b's eth0 (and its veth's end on n1) is read and set; a's and cni0 keep what the user gave them.
    A run-time impairment of b's (`netlab impair`) is remembered as such again."""
    lab, state = two_pods(), State("rs")
    a, b = lab.pod("a"), lab.pod("b")
    by_hand = {("rs-n1", "cni0"): tc.Shaping(rate_bits=1_000_000), (a.netns, "eth0"): tc.Shaping(rate_bits=2_000_000)}
    read: list[set] = []
    made: list[tuple] = []

    def observe(targets):
        read.append(set(targets))
        return {t: by_hand.get(t, tc.Shaping()) for t in targets}

    monkeypatch.setattr(impair, "_observe", observe)
    monkeypatch.setattr(impair.tc, "replace_root", lambda ns, iface, *args: made.append((ns, iface) + args))
    feature = ModuleFeature(impair)
    spec = next(s for ns, _, s in impair.impaired(lab) if ns == b.netns)  # as `netlab impair` set it
    state.extra[impair.RECORD] = {"shaped": {"rs-n1": ["cni0"], a.netns: ["eth0"], b.netns: ["eth0"]},
                                  "runtime": {f"{b.netns}:eth0": {"spec": spec}}}
    was = running_of(feature, state, [b.netns])
    feature.stop(state, [b.netns])
    stop_made(feature, state, [b.netns])
    start_again(feature, lab, state, [b.netns], was)
    assert read == [{(b.netns, "eth0")}]
    assert made == [(b.netns, "eth0", None, 5000, None)]
    assert impair.runtime(state) == {f"{b.netns}:eth0": {"spec": spec}}
    assert state.extra[impair.RECORD]["shaped"] == {"rs-n1": ["cni0"], a.netns: ["eth0"], b.netns: ["eth0"]}
    assert impair.remade(lab, [b.netns]) == {(b.netns, "eth0"), ("rs-n1", b.host_veth)}


def test_a_cni_pod_made_again_is_attached_and_no_other_pod_is_checked(world):  # noqa: F811
    """Pod b made again by a rollback (today `up` refuses to move a CNI pod, so only a feature calling start_again
    gets here), pod a's chain no longer matching it (its CHECK fails: drift). The lab-wide start CHECKed every pod
    and attached a again; start_again ADDs b alone, and a is not asked anything."""
    lab, plugins = world
    k = FakeKernel()
    lab_up.up(lab, k, features=[ModuleFeature(cni)], journal=Journal(k))
    state = state_mod.load_state(lab.name)
    feature = ModuleFeature(cni)
    b = lab.pod("b").netns
    was = running_of(feature, state, [b])
    feature.stop(state, [b])
    plugins.calls.clear()
    plugins.fail.add(("a", "chain", "CHECK"))
    out = start_again(feature, lab, state, [b], was)
    assert plugins.of("a") == []
    assert plugins.of("b") == [("loopback", "ADD", "lo"), ("chain", "ADD", "eth0")]
    assert out.actions == ["attached pod b through CNI (10.244.1.3)"]
    assert cni.pod_records(state)["b"]["phase"] == "added" and was == ["b"]


def test_a_paused_container_of_a_pod_made_again_is_started_again_and_one_still_paused_is_left(monkeypatch):
    """workload/again.py: pod b's shell paused (SIGSTOP: why_replace's "it was stopped") ran before the run, as a
    runtime's paused container runs: the run's stop killed it, and the rollback starts it again (it was held down as
    not running: status said it had exited, with 143). One whose process lives on, paused (the run's stop never
    came to it), is left paused."""
    from types import SimpleNamespace

    from netlab.workload import again
    from netlab.workload.tasks import STOPPED

    monkeypatch.setattr(again, "why_replace", lambda crec, argv, netns, uts: crec.get("why"))
    pods = {"b": {"netns": "fk-b", "uts": "/u/b", "containers": {"web": {"argv": ["x"]},
                                                                 "shell": {"argv": ["y"], "why": STOPPED}}}}
    was = again.running(pods, ["fk-b"])
    assert was["b"]["running"] == ["shell", "web"]
    pods.pop("b")
    lab = SimpleNamespace(pods=[SimpleNamespace(name="b", netns="fk-b")])
    only, hold = again.put_back(lab, pods, ["fk-b"], was)
    pod_b, shell = SimpleNamespace(name="b"), SimpleNamespace(name="shell")
    assert only == {"b"} and pods["b"]["containers"] == {}
    assert hold(pod_b, shell, {}, "never started") is None
    assert hold(pod_b, shell, {"argv": ["y"]}, STOPPED) == STOPPED


def test_the_echo_containers_a_new_server_takes_in_a_rollback_and_a_server_left_as_it_is(monkeypatch, state_root):
    """workload/again.py: before the run, the other pods' echo containers that run as threads of the lab's server
    (``served``); in the rollback's start, those still recorded as they were are taken by the new server when the
    old one is gone (the run's stop took it); a server that lives on but does not answer is left as it is, and the
    echo containers of the pods made again are said as not started, recorded so (status, `up` starts them)."""
    from types import SimpleNamespace

    from netlab.workload import again

    monkeypatch.setattr(again, "is_echo_thread", lambda crec: crec.get("thread", False))
    pods = {"a": {"netns": "fk-a", "containers": {"web": {"pid": 11, "thread": True}, "sh": {"pid": 12}}},
            "b": {"netns": "fk-b", "containers": {"web": {"pid": 13, "thread": True}}},
            "c": {"netns": "fk-c", "containers": {"web": {"pid": 14}}}}
    assert again.served(pods, ["fk-b"]) == ["a/web"]
    web, sh = SimpleNamespace(name="web", command=None), SimpleNamespace(name="sh", command=["sleep"])
    a, b, c = (SimpleNamespace(name=n, containers=[web, sh] if n == "a" else [web]) for n in "abc")
    lab = SimpleNamespace(pods=[a, b, c])
    assert again.served_gone(lab, pods, {"b"}, ["a/web"]) == [(a, web)]
    assert again.served_gone(lab, pods, None, ["a/web"]) == []  # a lab-wide start: its own
    monkeypatch.setattr(again.proc, "proc_state", lambda pid: "T")
    (state_root / "rb" / "logs").mkdir(parents=True)  # a lab's folder: its logs are written there alone
    b_rec = {"log": str(state_root / "rb" / "logs" / "b.web.log")}
    starting = {"b/web": "started container b/web"}
    said = again.echo_server_left(77, {"b": {"containers": {"web": b_rec}}}, [(b, web, "never started")], starting)
    why = "the lab's echo server (pid 77) is stopped (SIGSTOP), and a rollback does not replace it (it serves the other pods)"
    assert said == [f"pod b container web: could not start: {why}"] and starting == {} and b_rec["error"] == why
    assert why in (state_root / "rb" / "logs" / "b.web.log").read_text()
