"""What a running lab's rollback puts back of its containers (workload/put_back.py), no root: the records before the
run and after it, the processes' liveness and the start that puts them back stood in for.

The run of an edited file replaced pod app's `sleep 100000` with `sleep 100999` and the cluster DNS's dnsmasq (a
Service added), and its rollback left both (QA qa59m 1). Now each container the run changed is compared with its
record before the run: one it stopped is started again as the topology put back asks (the start's hold lets only
those through), one it never came to, or that was not running before, gets its record back (what the run started in
its place is stopped), a repair of the same command is kept, and no other container of the lab is touched.
tests/integration/test_rollback_puts_back.py checks the same with real processes."""

from __future__ import annotations

import os

import pytest

from netlab.feature import StartResult
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.workload import put_back as pb

OLD = {"name": "pb", "nodes": [{"name": "n1"}], "pods": [
    {"name": "app", "node": "n1", "containers": [{"name": "main", "command": ["sleep", "100000"]}]},
    {"name": "dns", "node": "n1", "containers": [{"name": "d", "command": ["dnsmasq", "--a"]}]},
    {"name": "once", "node": "n1", "restartPolicy": "Never", "containers": [{"name": "m", "command": ["true"]}]},
    {"name": "fix", "node": "n1", "containers": [{"name": "m", "command": ["sleep", "5"]}]},
    {"name": "duo", "node": "n1", "containers": [{"name": "main", "command": ["sleep", "7"]},
                                                  {"name": "side", "command": ["sleep", "8"]}]},
    {"name": "calm", "node": "n1", "containers": [{"name": "m", "command": ["sleep", "9"]}]},
    {"name": "h", "node": "n1", "hostname": "old-h", "containers": [{"name": "m", "command": ["sleep", "3"]}]},
]}


def _lab(**changes):
    topo = {**OLD, "pods": [dict(p) for p in OLD["pods"]]}
    for pod in topo["pods"]:
        pod.update(changes.get(pod["name"], {}))
    return resolve(Topology.model_validate(topo))


NEW = {"app": {"containers": [{"name": "main", "command": ["sleep", "100999"]}]},
       "dns": {"containers": [{"name": "d", "command": ["dnsmasq", "--b"]}]},
       "once": {"containers": [{"name": "m", "command": ["false"]}]},
       "duo": {"containers": [{"name": "main", "command": ["sleep", "7"]}]},
       "h": {"hostname": "new-h"}}


class State:
    def __init__(self, pods: dict):
        self.lab, self.extra = "pb", {"workload": {"version": 1, "pods": pods}}


def rec(pid: int, *argv: str, alive: bool = True, **more) -> dict:
    return {"pid": pid, "start": pid * 10, "argv": list(argv), "alive": alive, **more}


def pods_of(**containers) -> dict:
    return {name: {"netns": f"pb-{name}", "uts": f"/u/{name}", "containers": cs} for name, cs in containers.items()}


@pytest.fixture
def world(monkeypatch):
    """put_back with the liveness of each record its ``alive``, every namespace there, and the stops and the start
    recorded (the start returns what ``said`` holds)."""
    seen: dict = {"stopped": [], "start": [], "said": StartResult()}
    monkeypatch.setattr(pb, "_runs", lambda crec, netns, uts: crec.get("alive", False))
    monkeypatch.setattr(pb.nsmod, "is_netns_mount", lambda name: True)
    monkeypatch.setattr(pb, "stop_container", lambda lab, cid, crec, netns, uts=None: seen["stopped"].append(
        (cid, crec["pid"])))
    monkeypatch.setattr(pb.dns_records, "read", lambda lab: seen.get("dns"))

    def start(lab, state, hold=None, only=None, **kw):
        seen["start"].append((lab, set(only), hold))
        return seen["said"]

    seen["fn"] = start
    return seen


def test_what_the_run_changed_is_put_back_and_nothing_else(world):
    old, new = _lab(), _lab(**NEW)
    before = pods_of(app={"main": rec(11, "sleep", "100000")}, dns={"d": rec(12, "dnsmasq", "--a")},
                     once={"m": rec(13, "true")}, fix={"m": rec(14, "sleep", "5")},
                     duo={"main": rec(15, "sleep", "7"), "side": rec(16, "sleep", "8")},
                     calm={"m": rec(17, "sleep", "9", alive=False)}, h={"m": rec(18, "sleep", "3")})
    state = State(pods_of(app={}, dns={}, once={}, fix={}, duo={}, calm={}, h={}))
    was = pb.Before({k: {**v, "containers": {c: dict(r) for c, r in v["containers"].items()}} for k, v in
                     before.items()})
    was.ran = {"app/main": True, "dns/d": True, "once/m": False, "duo/side": True}
    was.hostnames = {p.name: p.hostname for p in new.pods}
    now = state.extra["workload"]["pods"]
    # the run: app's command replaced (its old process gone); dnsmasq's replacement written ahead, never started
    # (the old one runs on); once's new command started (the old had exited: Never); fix's exited container
    # restarted (a repair: the same command); duo's side stopped (not in the run's pod); calm exited, untouched
    before["app"]["containers"]["main"]["alive"] = False
    now["app"]["containers"] = {"main": rec(21, "sleep", "100999")}
    now["dns"]["containers"] = {"d": {"argv": ["dnsmasq", "--b"], "id": "x", "replaces": [12, 120]}}
    now["once"]["containers"] = {"m": rec(23, "false")}
    before["fix"]["containers"]["m"]["alive"] = False
    was.pods["fix"]["containers"]["m"]["alive"] = False
    was.pods["app"]["containers"]["main"]["alive"] = False
    was.pods["duo"]["containers"]["side"]["alive"] = False  # the run stopped it
    now["fix"]["containers"] = {"m": rec(24, "sleep", "5")}
    now["duo"]["containers"] = {"main": dict(before["duo"]["containers"]["main"])}
    now["calm"]["containers"] = {"m": dict(before["calm"]["containers"]["m"])}
    now["h"]["containers"] = {"m": dict(before["h"]["containers"]["m"])}
    assert pb.put_back(old, state, was, (), world["fn"]) == []
    assert world["stopped"] == [("once/m", 23)]  # what the run started in place of a container that had exited
    assert now["dns"]["containers"]["d"] == was.pods["dns"]["containers"]["d"]  # runs on: its record back
    assert now["once"]["containers"]["m"] == was.pods["once"]["containers"]["m"]  # exited, as before: not run again
    assert now["fix"]["containers"]["m"]["pid"] == 24  # the repair kept
    (lab, only, hold), = world["start"]
    assert lab is old and only == {"app", "dns", "once", "fix", "duo", "h"}
    pod = {p.name: p for p in old.pods}
    for cid, why in [("app/main", "its command changed"), ("duo/side", "never started")]:
        name, c = cid.split("/")
        assert hold(pod[name], next(x for x in pod[name].containers if x.name == c), {}, why) is None, cid
    for cid in ("fix/m", "calm/m", "duo/main", "h/m", "dns/d", "once/m"):
        name, c = cid.split("/")
        assert hold(pod[name], next(x for x in pod[name].containers if x.name == c), {}, "it had exited") == \
            pb.NOT_CHANGED, cid


def test_a_run_that_changed_nothing_of_them_starts_nothing(world):
    old = _lab()
    pods = pods_of(app={"main": rec(11, "sleep", "100000")})
    state = State({k: {**v, "containers": {c: dict(r) for c, r in v["containers"].items()}} for k, v in pods.items()})
    world["dns"] = "records\n"
    was = pb.Before(pods, dns="records\n", hostnames={p.name: p.hostname for p in old.pods})
    assert pb.put_back(old, state, was, (), world["fn"]) == [] and world["start"] == []
    world["dns"] = "records and web3\n"  # only the cluster DNS's records changed: written back, dnsmasq told
    assert pb.put_back(old, state, was, (), world["fn"]) == []
    assert [only for _, only, _ in world["start"]] == [set()]


def test_the_namespaces_the_rollback_handles_itself_are_left_and_what_cannot_start_is_said(world):
    old = _lab()
    before = pods_of(app={"main": rec(11, "sleep", "100000", alive=False)}, calm={"m": rec(17, "sleep", "9")})
    was = pb.Before(before, ran={"app/main": True, "calm/m": True})
    state = State(pods_of(app={"main": rec(21, "sleep", "100999")}, calm={"m": rec(27, "sleep", "99")}))
    world["said"] = StartResult(failed=["pod app container main: could not start: [Errno 2] No such file"],
                                problems=["pod calm container m: elsewhere", "dns: not of these pods"])
    assert pb.put_back(old, state, was, ["pb-calm"], world["fn"]) == [
        "pod app container main: could not start: [Errno 2] No such file"]
    assert [only for _, only, _ in world["start"]] == [{"app"}]


def test_before_looks_at_the_processes_of_the_containers_the_run_changes_alone(monkeypatch):
    """A run that changes nothing reads no /proc: only a container whose command the run changes, or that it
    stops (not in the run's pod, or its pod not in the run's lab), is asked whether it runs."""
    asked = []
    monkeypatch.setattr(pb, "why_replace", lambda crec, argv, netns, uts: asked.append(crec["pid"]) or None)
    monkeypatch.setattr(pb.dns_records, "read", lambda lab: None)
    new = _lab(**NEW)
    state = State(pods_of(app={"main": rec(11, "sleep", "100000")}, calm={"m": rec(17, "sleep", "9")},
                          duo={"main": rec(15, "sleep", "7"), "side": rec(16, "sleep", "8")},
                          gone={"m": rec(19, "sleep", "1")}))
    was = pb.before(new, state)
    assert sorted(asked) == [11, 16, 19]
    assert was.ran == {"app/main": True, "duo/side": True, "gone/m": True}
    assert was.hostnames["h"] == "new-h"
    state.extra["workload"]["pods"]["app"]["containers"]["main"]["pid"] = 99  # a copy: the run's edits stay its own
    assert was.pods["app"]["containers"]["main"]["pid"] == 11


def test_services_put_back_the_pod_files_the_run_wrote_for_its_topology_alone(tmp_path, monkeypatch):
    """services/put_back.py: a lab without Services whose run added one (the cluster DNS) and gave pod a another
    hostname: the run wrote every pod's resolv.conf (naming a DNS Service the rollback takes away) and a's hosts
    file. Put back: the resolv.conf files go, a's hosts file names its old hostname again; b's hosts file, edited by
    hand (the run's topology asked the same of it), stays edited; the cluster DNS's pod is the rollback's own."""
    from netlab.services import hosts, lifecycle as services, netns_files
    from netlab.services import put_back as services_back

    monkeypatch.setattr(netns_files, "ETC_NETNS", str(tmp_path / "etc-netns"))
    monkeypatch.setattr(services_back.nsmod, "is_netns_mount", lambda name: True)
    monkeypatch.setattr("netlab.services.flannel_files.sync", lambda lab, state=None: StartResult())
    base = {"name": "ps", "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1", "hostname": "old-a",
                                                                "labels": {"app": "a"}}, {"name": "b", "node": "n1"}]}
    old = resolve(Topology.model_validate(base))
    ran = resolve(Topology.model_validate({**base, "pods": [{**base["pods"][0], "hostname": "new-a"}, base["pods"][1]],
                                           "services": [{"name": "s", "selector": {"app": "a"},
                                                         "ports": [{"port": 80}]}]}))
    state = State({})
    state.save = lambda best_effort=False: True
    state.removed_files = []
    services.start(old, state)
    b_hosts = netns_files.file_path("ps-b", hosts.KIND)
    edited = netns_files.read(b_hosts) + "10.9.9.9\tby-hand\n"
    services.start(ran, state)  # the run
    with open(b_hosts, "w") as fh:
        fh.write(edited)
    assert all(netns_files.read(netns_files.file_path(ns, "resolv")) for ns in ("ps-a", "ps-b"))
    dns = ran.pod("kube-dns").netns
    assert services.put_back(old, state, ran, None, {dns}) == []
    assert [netns_files.read(netns_files.file_path(ns, "resolv")) for ns in ("ps-a", "ps-b")] == [None, None]
    assert netns_files.read(netns_files.file_path("ps-a", hosts.KIND)) == hosts.hosts_file("ps", old.pod("a"))
    assert netns_files.read(b_hosts) == edited
    assert [line for line in services.drift(old, state) if not line.startswith("flannel: ")] == [f"hosts: {b_hosts} is different (pod b would not get the kubelet's hosts "
                                          "file); up writes it again"]


def test_the_logs_a_restart_took_are_named_and_a_moved_or_grown_log_is_not(world, tmp_path, monkeypatch):
    """What a container printed before the run is looked for, after the put back, in its log and its previous log
    (a restart of the same command moves the one to the other; one never restarted grew): found in neither, the
    container is named in ``gone``, for the rollback's line."""
    monkeypatch.setattr(pb, "log_path", lambda lab, pod, c: str(tmp_path / f"{pod}.{c}.log"))
    monkeypatch.setattr(pb, "previous_log_path", lambda lab, pod, c: str(tmp_path / f"{pod}.{c}.previous.log"))
    for pod in ("app", "duo", "calm", "h"):
        (tmp_path / f"{pod}.m.log").write_text(f"{pod} before the run\n" + "x" * 5000)
    (tmp_path / "once.m.log").write_text("")  # nothing printed: nothing to lose
    old = _lab()
    was = pb.Before(pods_of(app={}), ran={"app/m": True, "duo/m": True, "calm/m": True, "h/m": False, "once/m": True})
    was.logs = {cid: pb._printed(str(tmp_path / f"{cid.replace('/', '.')}.log")) for cid in was.ran}
    was.logs = {cid: printed for cid, printed in was.logs.items() if printed is not None}
    assert sorted(was.logs) == ["app/m", "calm/m", "duo/m", "h/m"]
    # app: started over (a changed command); duo: moved to the previous log; calm: grew; h: removed
    (tmp_path / "app.m.log").write_text("app in the run\n")
    os.replace(tmp_path / "duo.m.log", tmp_path / "duo.m.previous.log")
    with open(tmp_path / "calm.m.log", "a") as fh:
        fh.write("more\n")
    os.unlink(tmp_path / "h.m.log")
    state = State(pods_of(app={}))
    pb.put_back(old, state, was, (), world["fn"])
    assert was.gone == ["app/m", "h/m"]
