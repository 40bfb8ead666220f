"""`netlab plan` of a CNI lab: the pods' eth0, address and routes are the plugins', so the plan ends with one ADD
step per pod (plan/cniadd.py): the networks and plugins, CNI_COMMAND=ADD, CNI_NETNS, CNI_IFNAME=eth0, CNI_ARGS,
runtimeConfig, and what the plugins are expected to make. Pure: no plugin runs, no root."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_inprocess import run_cli
from helpers import STATE_READING

from netlab.errors import UsageError
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan import cniadd

ROOT = Path(__file__).resolve().parents[2]
BASH = ROOT / "examples" / "cni" / "bash-bridge" / "topology.yaml"
REFERENCE = """name: pc
network: {cni: reference}
namespaces: [{name: x}]
nodes: [{name: n1}, {name: n2}]
pods:
  - {name: a, node: n1, namespace: x}
  - {name: b, node: n2}
"""


def _reference(tmp_path: Path) -> Path:
    path = tmp_path / "ref.yaml"
    path.write_text(REFERENCE)
    return path


def test_a_reference_labs_plan_ends_with_each_pods_add(tmp_path):
    proc = run_cli("plan", "-t", str(_reference(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    heads = [i for i, ln in enumerate(lines) if ln.startswith("# CNI ADD of pod ")]
    assert [lines[i] for i in heads] == ["# CNI ADD of pod a: its node's runtime runs in pc-n1, one after another:",
                                         "# CNI ADD of pod b: its node's runtime runs in pc-n2, one after another:"]
    assert heads[0] > max(i for i, ln in enumerate(lines) if ln.startswith("ip ") or ln == "EOF")  # after the network
    step = lines[heads[0]:heads[1]]
    assert step[1:3] == ["#   network cni-loopback (cniVersion 1.0.0), CNI_IFNAME=lo: loopback",
                         "#   network cbr0 (cniVersion 1.0.0), CNI_IFNAME=eth0: bridge"]
    assert step[3] == ("#   CNI_COMMAND=ADD CNI_CONTAINERID=<sandbox id> CNI_NETNS=/run/netns/pc-a CNI_IFNAME=eth0 "
                       "CNI_PATH=/usr/lib/cni CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a;"
                       "K8S_POD_INFRA_CONTAINER_ID=<sandbox id>;IP=10.244.0.2")
    assert '#   runtimeConfig of bridge: {"ips": ["10.244.0.2/24"]}' in step
    expected = [ln.removeprefix("#   expected: ") for ln in step if ln.startswith("#   expected: ")]
    assert "loopback: lo up in pc-a (127.0.0.1/8)" in expected
    assert any(e.startswith("bridge: a veth pair, eth0 in pc-a (mtu 1450) and its peer veth<8 hex> in pc-n1, "
                            "a port of cni0, hairpin on") for e in expected), expected
    assert any(e.startswith("host-local: eth0 10.244.0.2/24 in pc-a") for e in expected), expected
    assert "bridge: routes in pc-a: 10.244.0.0/16 via 10.244.0.1 dev eth0, default via 10.244.0.1 dev eth0" \
        in expected
    # The plan holds none of the pod side itself: that is what the steps explain.
    assert not [ln for ln in lines if ln.startswith(("ip -n pc-a ", "ip -n pc-b "))]


def test_a_reference_labs_plan_json_keeps_its_keys_and_adds_the_steps(tmp_path):
    proc = run_cli("plan", "-t", str(_reference(tmp_path)), "-o", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert list(data) == ["lab", "resources", "cni_add", "qdiscs", "warnings"] and data["lab"] == "pc" and data["resources"]
    a, b = data["cni_add"]
    assert (a["kind"], a["pod"], a["netns"], a["pod_netns"]) == ("cni-add", "a", "pc-n1", "pc-a")
    assert b["env"]["CNI_NETNS"] == "/run/netns/pc-b" and b["env"]["CNI_IFNAME"] == "eth0"
    assert b["env"]["CNI_COMMAND"] == "ADD" and "K8S_POD_NAME=b;" in b["env"]["CNI_ARGS"]
    assert [(n["name"], n["ifname"], n["plugins"]) for n in a["networks"]] == [
        ("cni-loopback", "lo", ["loopback"]), ("cbr0", "eth0", ["bridge"])]
    assert a["runtimeConfig"] == {"bridge": {"ips": ["10.244.0.2/24"]}} and a["expected"]


def test_a_conflist_labs_step_names_its_file_its_plugins_and_what_they_are_asked_for():
    proc = run_cli("plan", "-t", str(BASH), "-o", "json")
    assert proc.returncode == 0, proc.stderr
    steps = {s["pod"]: s for s in json.loads(proc.stdout)["cni_add"]}
    assert sorted(steps) == ["web-1", "web-2", "web-3"]
    web2 = steps["web-2"]
    main = web2["networks"][1]
    assert (main["name"], main["plugins"], main["file"]) == ("bash-net", ["bash-bridge"],
                                                             str(BASH.parent / "bash-bridge.conflist"))
    assert web2["env"]["CNI_PATH"] == f"{BASH.parent}:/usr/lib/cni" and web2["netns"] == "bashcni-node-2"
    assert web2["runtimeConfig"] == {"bash-bridge": {"ipRanges": [[{"subnet": "10.244.1.0/24"}]]}}
    assert any("eth0 in bashcni-web-2 with an address (CNI_ARGS IP=10.244.1.2; the node's range 10.244.1.0/24 "
               "in runtimeConfig.ipRanges)" in e for e in web2["expected"]), web2["expected"]
    text = run_cli("plan", "-t", str(BASH)).stdout
    assert text.count("# CNI ADD of pod ") == 3


def test_a_builtin_labs_plan_has_no_cni_step():
    assert cniadd.add_steps(resolve(load_topology(None))) == []
    data = json.loads(run_cli("plan", "-o", "json").stdout)
    assert data["cni_add"] == [] and "CNI ADD" not in run_cli("plan").stdout


def test_the_steps_are_what_the_runtime_runs(tmp_path):
    """The runtime (netlab.cni) takes its networks, CNI_ARGS and capabilities from the same functions."""
    from netlab.cni import conf as C

    lab = resolve(load_topology(str(_reference(tmp_path))))
    assert C.networks is cniadd.networks and C.cni_args is cniadd.cni_args
    assert C.bin_dirs(lab) == cniadd.bin_dirs(lab) == dict(cniadd.add_steps(lab)[0].env)["CNI_PATH"].split(":")
    [a, _] = cniadd.add_steps(lab)
    pod, node = lab.pod("a"), lab.node("n1")
    assert [n.name for n in a.networks] == [n.name for n, _ in C.networks(lab, node, "/d")]
    assert dict(a.env)["CNI_ARGS"] == C.args_text(C.cni_args(pod, cniadd.SANDBOX_ID, pod.ip))
    stdin = C.build_one_config(C.networks(lab, node, "/d")[1][0], C.networks(lab, node, "/d")[1][0].plugins[0],
                               None, C.capability_args(lab, pod, pod.ip))
    assert a.to_json()["runtimeConfig"]["bridge"] == stdin["runtimeConfig"]


def test_plan_of_a_cni_lab_runs_no_plugin_and_loads_no_kernel_code(tmp_path):
    """As for a builtin lab (test_cli_commands): plan needs no root, and reads the conflist without the runtime."""
    code = ("import sys; from netlab.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "heavy = ('pyroute2', 'scapy', 'subprocess', 'netlab.realize', 'netlab.probe', 'netlab.trace',"
            " 'netlab.kernel', 'netlab.workload', 'netlab.services', 'netlab.doctor', 'netlab.cni')\n"
            f"light = {STATE_READING + ('netlab.realize.cni_path',)!r}\n"  # NETLAB_CNI_PATH, a lab's record
            "loaded = sorted(m for m in sys.modules if m.startswith(heavy) and m not in light)\n"
            "print(','.join(loaded), file=sys.stderr)")
    for path in (_reference(tmp_path), BASH):
        for out in ("text", "json"):
            proc = subprocess.run([sys.executable, "-c", code, "plan", "-t", str(path), "-o", out],
                                  capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, proc.stderr
            assert proc.stderr.strip() == "", f"netlab plan -t {path.name} loaded: {proc.stderr.strip()}"


# A plugin that answers VERSION and nothing else: validate asks, and the answer is all it needs.
VERSION_ONLY = "#!/bin/sh\ncat >/dev/null\necho '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"1.0.0\"]}'\n"


def test_validate_of_a_cni_lab_asks_its_plugins_and_loads_no_kernel_code(tmp_path):
    """validate of a lab with network.cni runs each plugin for VERSION (a plain process, in this namespace) and
    reads the file: the code that enters namespaces and talks netlink (netlab.kernel) stays unloaded. It was
    loaded through the CNI runtime (netlab.cni.invoke -> netlab.kernel.netns), which only ADD, CHECK and DEL,
    run in a node's namespace, need."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("loopback", "mynet"):  # CNI_PATH: binDir first, so these are the ones asked
        (bindir / name).write_text(VERSION_ONLY)
        (bindir / name).chmod(0o755)
    (tmp_path / "n.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "n",
                                                     "plugins": [{"type": "mynet"}]}))
    (tmp_path / "missing.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "n",
                                                           "plugins": [{"type": "mynet"}, {"type": "gone"}]}))
    code = ("import sys; from netlab.cli import main\n"
            "try:\n    status = main(sys.argv[1:])\nexcept SystemExit as exc:\n    status = exc.code\n"
            "print('exit', status or 0)\n"
            "heavy = ('pyroute2', 'scapy', 'netlab.kernel', 'netlab.probe', 'netlab.trace', 'netlab.workload',"
            " 'netlab.services', 'netlab.doctor')\n"
            # the plugin's conf is written with SIGPIPE held (kernel/sigpipe.py): a signal mask, no namespace
            "light = ('netlab.kernel', 'netlab.kernel.sigpipe')\n"
            "print('loaded:', ','.join(sorted(m for m in sys.modules if m.startswith(heavy) and m not in light)))")
    for conflist, status in (("n.conflist", "0"), ("missing.conflist", "2")):
        path = tmp_path / f"{conflist}.yaml"
        path.write_text(f"name: cv\nnodes: [{{name: a}}]\npods: [{{name: p, node: a}}]\n"
                        f"network:\n  cni: {{conflist: {conflist}, binDir: bin}}\n")
        for out in ("text", "json"):
            proc = subprocess.run([sys.executable, "-c", code, "validate", "-t", str(path), "-o", out],
                                  capture_output=True, text=True, timeout=60)
            assert proc.stdout.splitlines()[-2:] == [f"exit {status}", "loaded: "], (proc.stdout, proc.stderr)
            if status == "2":  # the plugins were asked: the missing one is named
                assert "plugin 'gone' not found in" in proc.stdout + proc.stderr


def test_a_conflist_gone_since_the_topology_was_read_is_one_line(tmp_path):
    conflist = tmp_path / "n.conflist"
    conflist.write_text(json.dumps({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "ptp"}]}))
    path = tmp_path / "t.yaml"
    path.write_text("name: pg\nnetwork: {cni: {conflist: n.conflist}}\nnodes: [{name: n1}]\n"
                    "pods: [{name: p, node: n1}]\n")
    lab = resolve(load_topology(str(path)))
    conflist.write_text("{")
    with pytest.raises(UsageError, match=r"^network\.cni\.conflist: .*n\.conflist: is not JSON") as exc:
        cniadd.add_steps(lab)
    assert "\n" not in str(exc.value)


def _cni_path(proc) -> str:
    return next(w for ln in proc.stdout.splitlines() for w in ln.split() if w.startswith("CNI_PATH="))


def test_the_plans_cni_path_is_the_folders_up_would_use(tmp_path, monkeypatch):
    """The plan prints the CNI calls a learner can replay: CNI_PATH named /usr/lib/cni whatever NETLAB_CNI_PATH
    said. It is the setting's folders (colon-joined, as libcni's CNI_PATH), and for a lab of that name that is up,
    the folders its state records (realize/cni_path.py: up keeps them), whatever the setting says now."""
    from netlab.model.load import parse_yaml, validate_source
    from netlab.realize.state import LabState

    opt, other = tmp_path / "opt", tmp_path / "other"
    for folder in (opt, other):
        folder.mkdir(mode=0o755)
    monkeypatch.setenv("NETLAB_CNI_PATH", f"{opt}:/usr/lib/cni")
    path = _reference(tmp_path)
    assert _cni_path(run_cli("plan", "-t", str(path))) == f"CNI_PATH={opt}:/usr/lib/cni"
    proc = run_cli("plan", "-t", str(path), "-o", "json")
    assert {s["env"]["CNI_PATH"] for s in json.loads(proc.stdout)["cni_add"]} == {f"{opt}:/usr/lib/cni"}
    topo = validate_source(parse_yaml(REFERENCE, str(path))).model_dump(mode="json", by_alias=True, exclude_none=True)
    LabState(lab="pc", topology=topo, source=str(path), extra={"cni_path": [str(other)]}).save()
    assert _cni_path(run_cli("plan", "-t", str(path))) == f"CNI_PATH={other}"
