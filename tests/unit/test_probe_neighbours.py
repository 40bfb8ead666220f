"""The neighbour-table budget and warning (no root: thresholds are passed in)."""

from __future__ import annotations

import subprocess
import sys

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.probe import neighbours as nb
from netlab.probe.matrix import build_matrix, endpoints
from netlab.probe.job import SEED_ABOVE, arp_flood_cost, choose_arp, make_job

DEFAULT = {"gc_thresh1": 128, "gc_thresh2": 512, "gc_thresh3": 1024}


def one_bridge(n: int, mode: str = "vxlan"):
    pods = [{"name": f"p{i}", "node": "n1"} for i in range(n)]
    return resolve(Topology.model_validate({"name": "nb", "network": {"mode": mode},
                                            "nodes": [{"name": "n1"}, {"name": "n2"}], "pods": pods}))


def test_full_mesh_is_quadratic_per_bridge():
    # two nodes resolve each other on the underlay in both modes (vxlan's outer packets too: it left them out)
    assert nb.full_mesh_entries(one_bridge(4)) == 4 * 3 + 2 * 4 + 2
    assert nb.full_mesh_entries(one_bridge(4, "host-gw")) == 4 * 3 + 2 * 4 + 2


def test_small_lab_no_warning_big_lab_names_the_sysctl():
    assert nb.neighbour_budget_warning(one_bridge(10), DEFAULT) is None
    warning = nb.neighbour_budget_warning(one_bridge(33), DEFAULT)
    assert warning and "net.ipv4.neigh.default.gc_thresh3" in warning and "1024" in warning
    assert "sudo sysctl -w" in warning
    # A host that already raised the limit gets no warning.
    assert nb.neighbour_budget_warning(one_bridge(33), {**DEFAULT, "gc_thresh3": 8192}) is None


def test_budget_stays_below_gc_thresh2_with_margin():
    stats = nb.TableStats(entries=100, forced_gc_runs=0, table_fulls=0)
    assert nb.probe_budget(DEFAULT, stats) == 512 - 100 - nb.MARGIN
    crowded = nb.TableStats(entries=1000, forced_gc_runs=0, table_fulls=0)
    assert nb.probe_budget(DEFAULT, crowded) == 32  # still makes progress


def two_nodes(mode: str = "vxlan"):
    pods = [{"name": "a", "node": "n1", "ip": "10.244.0.2"}, {"name": "b", "node": "n1", "ip": "10.244.0.3"},
            {"name": "c", "node": "n2", "ip": "10.244.1.2"}]
    return resolve(Topology.model_validate({
        "name": "nb", "network": {"mode": mode},
        "nodes": [{"name": "n1", "ip": "192.168.122.10", "podCIDR": "10.244.0.0/24"},
                  {"name": "n2", "ip": "192.168.122.11", "podCIDR": "10.244.1.0/24"}], "pods": pods}))


def test_path_entries_follow_the_packet():
    lab = two_nodes()
    e = endpoints(lab)
    # Same bridge: each pod learns the other.
    assert nb.path_entries(lab, e["a"], e["b"]) == [("nb-a", "eth0", "10.244.0.3"), ("nb-b", "eth0", "10.244.0.2")]
    # Node to its own pod: cni0 learns the pod, the pod learns its gateway.
    assert nb.path_entries(lab, e["n1"], e["a"]) == [("nb-n1", "cni0", "10.244.0.2"), ("nb-a", "eth0", "10.244.0.1")]
    # Across nodes: both pods' gateway pairs, and the nodes on the underlay (VXLAN's outer packets too).
    assert set(nb.path_entries(lab, e["a"], e["c"])) == {
        ("nb-a", "eth0", "10.244.0.1"), ("nb-n1", "cni0", "10.244.0.2"),
        ("nb-c", "eth0", "10.244.1.1"), ("nb-n2", "cni0", "10.244.1.2"),
        ("nb-n1", "eth0", "192.168.122.11"), ("nb-n2", "eth0", "192.168.122.10")}
    assert set(nb.path_entries(lab, e["n1"], e["c"])) == {
        ("nb-c", "eth0", "10.244.1.1"), ("nb-n2", "cni0", "10.244.1.2"),
        ("nb-n1", "eth0", "192.168.122.11"), ("nb-n2", "eth0", "192.168.122.10")}


def test_units_pair_same_bridge_pods_and_stay_within_budget():
    lab = one_bridge(30)
    probes = build_matrix(lab, ["icmp", "tcp"])
    job = make_job(lab, probes, 1.0, budget=100)
    ids = sorted(i for u in job.units for ph in u.phases for i in ph)
    assert ids == list(range(len(probes)))  # every probe exactly once
    pair_units = [u for u in job.units if len(u.phases) == 2]
    assert len(pair_units) == 30 * 29 // 2
    u = pair_units[0]
    first, second = ({probes[i].source.name for i in ph} for ph in u.phases)
    assert len(first) == len(second) == 1 and first != second  # one direction, then the other
    assert {probes[i].proto for ph in u.phases for i in ph} == {"icmp", "tcp"}  # all probes of the pair
    assert len(u.entries) == 2
    assert all(len(set(u.entries)) <= 100 // 4 or len(u.phases[0]) == 1 for u in job.units)


def test_auto_arp_seeds_only_big_bridges():
    assert choose_arp(one_bridge(50)) == "real"
    assert arp_flood_cost(one_bridge(200)) > SEED_ABOVE
    assert choose_arp(one_bridge(200)) == "seeded"
    assert choose_arp(one_bridge(200), "real") == "real"


def test_seeded_pairs_carry_permanent_entries_not_counted_ones():
    lab = one_bridge(3)
    probes = build_matrix(lab, ["icmp"])
    job = make_job(lab, probes, 1.0, budget=100, arp="seeded")
    pairs = [u for u in job.units if u.seed]
    assert len(pairs) == 3 and all(not u.entries for u in pairs)
    seed = pairs[0].seed
    # Each side learns the other, with the MAC read from the other pod's own eth0.
    assert seed == [("nb-p0", "eth0", "10.244.0.3", "nb-p1"), ("nb-p1", "eth0", "10.244.0.2", "nb-p0")]
    # Node -> pod probes still resolve by ARP: each pod's ARP is checked once.
    assert [u.entries for u in job.units if not u.seed][0] == [("nb-n1", "cni0", "10.244.0.2"),
                                                                ("nb-p0", "eth0", "10.244.0.1")]


def test_conntrack_clean_up_only_where_the_run_leaves_entries_that_matter():
    """UDP probes (their answered flows' entries would make a later run's flows ESTABLISHED), Service probes
    (NAT decisions) and TCP probes (a stopped run's open connections) are cleaned up in the nodes' namespaces;
    ICMP alone leaves nothing to."""
    ports = [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 80, "protocol": "UDP"}]
    pods = [{"name": f"p{i}", "node": "n1", "containers": [{"name": "c", "ports": ports}]} for i in range(3)]
    lab = resolve(Topology.model_validate({"name": "nb", "nodes": [{"name": "n1"}, {"name": "n2"}], "pods": pods}))
    assert make_job(lab, build_matrix(lab, ["icmp"]), 1.0, budget=100).untrack == []
    assert make_job(lab, build_matrix(lab, ["tcp"]), 1.0, budget=100).untrack == ["nb-n1", "nb-n2"]
    udp = build_matrix(lab, ["udp"])
    assert udp and make_job(lab, udp, 1.0, budget=100).untrack == ["nb-n1", "nb-n2"]


def test_a_job_asks_for_the_nodes_devices_once_not_once_a_probe(monkeypatch):
    """make_job names each probe's entries (path_entries): the map of each pod to its node's side (the bridge, or
    the pod's veth) is made once for the lab, not anew for each of a 50-pod ICMP matrix's 2,500 probes (~30 % of
    make_job's time), and the job is the same."""
    lab = one_bridge(8, "host-gw")
    two = one_bridge(2, "host-gw")
    probes = build_matrix(lab, ["icmp"])
    asked = []
    real = nb.lab_bridge
    monkeypatch.setattr(nb, "lab_bridge", lambda lab: asked.append(lab) or real(lab))
    job = make_job(lab, probes, 1.0, budget=200)
    assert len(asked) == 1 and len(job.tasks) == len(probes)
    assert nb.node_devices(two) == {p.name: "cni0" for p in two.pods}  # each lab its own map
    assert nb.node_devices(lab) == {p.name: "cni0" for p in lab.pods}


def test_ups_warning_loads_no_probe_matrix():
    """`up`'s warning (neighbour_budget_warning, a big lab's too) asks plan.cniadd for the pods' bridge, not the
    probe's matrix (its policy judge and DNS questions: ~1.5 ms of every `up`), which only a probe needs."""
    code = ("import sys\n"
            "from netlab.model.lab import resolve\n"
            "from netlab.model.topology import Topology\n"
            "from netlab.probe import neighbours as nb\n"
            "pods = [{'name': f'p{i}', 'node': 'n1'} for i in range(33)]\n"
            "lab = resolve(Topology.model_validate({'name': 'nb', 'nodes': [{'name': 'n1'}], 'pods': pods}))\n"
            "said = nb.neighbour_budget_warning(lab, {'gc_thresh1': 128, 'gc_thresh2': 512, 'gc_thresh3': 1024})\n"
            "print('cni0' in said, 'netlab.probe.matrix' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "False"]


def test_probe_arp_help_says_where_auto_seeds_and_it_is_true():
    """qa62s: the help said auto seeds at "about 125 pods on one bridge", but the ARP cost is summed over every
    node's bridge (job.flood_cost): two bridges of 101 pods seed too. The help's figures are arp_mode's."""
    from netlab.cli.probe import probe
    from netlab.probe.job import arp_mode

    (opt,) = [p for p in probe.params if p.name == "arp"]
    assert "summed over the nodes' bridges" in opt.help
    assert "more than 125 pods on one bridge, 100 on each of two or 79 on each of four" in opt.help, opt.help
    for per, bridges in ((125, 1), (100, 2), (79, 4)):  # at the figures: real; one pod more a bridge: seeded
        nodes = [f"n{b}" for b in range(bridges)]
        assert arp_mode("auto", [n for n in nodes for _ in range(per)]) == "real", (per, bridges)
        assert arp_mode("auto", [n for n in nodes for _ in range(per + 1)]) == "seeded", (per, bridges)


def test_ups_warning_is_repeated_only_for_a_lab_of_the_same_size():
    """qa62s: up's neighbour-table warning came with every up, "nothing to change" ones too. It is said again when
    the lab's size (its pods on each node, its nodes) differs from the saved topology's, or there is none."""
    lab = one_bridge(40)
    saved = lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert nb.budget_warning_repeated(saved, lab)
    assert not nb.budget_warning_repeated(one_bridge(39).topo.model_dump(mode="json", by_alias=True), lab)
    moved = {**saved, "pods": [{**saved["pods"][0], "node": "n2"}, *saved["pods"][1:]]}
    assert not nb.budget_warning_repeated(moved, lab)  # one pod fewer on n1's bridge
    assert not nb.budget_warning_repeated({**saved, "nodes": saved["nodes"][:1]}, lab)
    assert not nb.budget_warning_repeated(None, lab) and not nb.budget_warning_repeated({"pods": "?"}, lab)


def test_ups_warning_is_left_off_only_when_the_cli_said_these_words_at_the_up_before(state_root, monkeypatch):
    """QA fx62r 4: the warning was left off stderr whenever the up before had a lab of the same size, even when
    it was never said then (gc_thresh3 was higher; that up ran through the API or the pytest plugin, which print
    nothing). It is left off only when the CLI recorded it said these very words (probe/budget_said)."""
    from types import SimpleNamespace

    from cli_inprocess import run_cli
    from netlab.api import results as R
    from netlab.probe import budget_said
    from netlab.realize.lab_lock import LabLock

    lab = one_bridge(40)
    saved = lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True)
    words = nb.neighbour_budget_warning(lab, {"gc_thresh1": 128, "gc_thresh2": 512, "gc_thresh3": 1024})
    assert words
    with LabLock(lab.name):  # the lab's folder, its lock file and its state, as its up made them
        (state_root / lab.name / "state.json").write_text("{}")
    assert not budget_said.repeated(saved, lab, words)  # no record: that up did not say it
    budget_said.record(lab.name, "all-pairs traffic ... gc_thresh3 = 512 ...")  # other words: another threshold
    assert not budget_said.repeated(saved, lab, words)
    # The CLI records what it said: then, and only then, the next up of a lab this size leaves it off
    monkeypatch.setattr("netlab.cli.lab.require_root", lambda: None)
    monkeypatch.setattr("netlab.api.Lab.up_loaded", classmethod(lambda cls, loaded, **kw: SimpleNamespace(
        last_up=R.UpResult(lab=lab.name, changed=False, created_netns=(), removed_netns=(), fixed=(), operations=0,
                           warnings=(words,)), model=loaded.lab, owned=False, _repeated_warnings=(),
        _budget_warning=words)))
    monkeypatch.setattr("netlab.api.selected_name", lambda name, topology=None, required=True: name or lab.name)
    import yaml
    path = state_root.parent / "t.yaml"
    path.write_text(yaml.safe_dump(saved))
    run = run_cli("up", "-t", str(path))
    assert run.returncode == 0 and words in run.stderr, run
    assert budget_said.repeated(saved, lab, words)
    assert not budget_said.repeated(saved, lab, words.replace("1024", "2048"))
    budget_said.record(lab.name, None)  # an up without the warning: the record goes
    assert budget_said.said(lab.name) is None
