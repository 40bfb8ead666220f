"""The reference chain's plugins in another folder (NETLAB_CNI_PATH, realize/cni_path.py), as kubeadm's or
containerd's /opt/cni/bin, and `validate` on a machine without Debian's plugins (/usr/lib/cni hidden by an empty
tmpfs in a mount namespace of the command's own: the machine's folder is never touched)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import NETLAB, netlab

pytestmark = pytest.mark.root

DEBIAN = "/usr/lib/cni"
# Each plugin of the other folder logs how it was run, then is Debian's (a copy beside it: /usr/lib/cni is hidden).
WRAPPER = '#!/bin/sh\necho "$CNI_COMMAND $CNI_PATH" >> {log}\nexec {real} "$@"\n'


def without_debians(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "-m", "--propagation", "slave", "sh", "-c",
                           f'mount -t tmpfs none {DEBIAN} && exec "$@"', "hide", *NETLAB, *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120)


def test_validate_without_debians_plugins_is_exit_3_and_another_folder_serves(labs, tmp_path):
    assert os.access(f"{DEBIAN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    lab = labs.name("ib")
    topo = tmp_path / "t.yaml"
    topo.write_text(f"name: {lab}\nnetwork: {{cni: reference}}\nnodes: [{{name: n1}}]\n"
                    "pods: [{name: a, node: n1}, {name: b, node: n1}]\n")
    res = without_debians("validate", "-t", str(topo))
    assert res.returncode == 3 and res.stderr.startswith(
        f"{topo}:2: network.cni: plugins 'loopback', 'bridge', 'host-local' not found in {DEBIAN} (or not "
        "executable): the topology is valid, this machine lacks them; fix: apt-get install "
        "containernetworking-plugins"), res.stdout + res.stderr

    opt = tmp_path / "opt-cni-bin"
    opt.mkdir(mode=0o755)
    log = tmp_path / "calls"
    real = tmp_path / "real"
    real.mkdir(mode=0o755)
    for name in ("loopback", "bridge", "host-local"):
        subprocess.run(["cp", f"{DEBIAN}/{name}", str(real / name)], check=True)
        (opt / name).write_text(WRAPPER.format(log=log, real=real / name))
        (opt / name).chmod(0o755)
    env = {"NETLAB_CNI_PATH": str(opt)}
    res = without_debians("validate", "-t", str(topo), env=env)
    assert res.returncode == 0, res.stderr
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    res = without_debians("validate", "-t", str(topo), env={"NETLAB_CNI_PATH": str(loose)})
    assert res.returncode == 2 and "is not root's alone" in res.stderr, res.stderr

    labs.up(topo.read_text(), "t.yaml", env=env)  # made with the other folder; later commands without the setting
    state = json.loads(open(os.path.join(os.environ.get("NETLAB_STATE_DIR", "/run/netlab"), lab,
                                         "state.json")).read())
    assert state["extra"]["cni_path"] == [str(opt)]
    assert netlab("status", "--lab", lab).returncode == 0
    subprocess.run(["ip", "netns", "exec", f"{lab}-a", "ping", "-c1", "-W2", "10.244.0.3"], check=True,
                   capture_output=True)
    netlab("down", "--lab", lab)
    said = log.read_text().splitlines()
    commands = [line.split()[0] for line in said]
    assert {"ADD", "CHECK", "DEL"} <= set(commands), said  # up's ADDs, status' CHECKs, down's DELs: all from opt
    assert all(line.split()[1].split(":")[0] == str(opt) for line in said if line.split()[0] != "VERSION"), said


def test_plan_json_and_a_loose_plugin_file_with_the_real_plugins(labs, tmp_path):
    """plan's CNI_PATH is the folders up runs the plugins from (the setting's, then the running lab's record
    whatever the setting says); validate -o json on a machine without them is a document (exit 3); a plugin file
    anyone can write, in a folder root's alone, is refused before any plugin runs (exit 2)."""
    assert os.access(f"{DEBIAN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    lab = labs.name("cpx")
    topo = tmp_path / "t.yaml"
    topo.write_text(f"name: {lab}\nnetwork: {{cni: reference}}\nnodes: [{{name: n1}}]\n"
                    "pods: [{name: a, node: n1}, {name: b, node: n1}]\n")
    res = without_debians("validate", "-t", str(topo), "-o", "json")
    assert res.returncode == 3, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["valid"] is True and doc["machine_missing"]["plugins"] == ["loopback", "bridge", "host-local"]
    assert doc["machine_missing"]["folders"] == [DEBIAN]

    opt, real, log = tmp_path / "opt", tmp_path / "real", tmp_path / "calls"
    opt.mkdir(mode=0o755)
    real.mkdir(mode=0o755)
    for name in ("loopback", "bridge", "host-local"):
        subprocess.run(["cp", f"{DEBIAN}/{name}", str(real / name)], check=True)
        (opt / name).write_text(WRAPPER.format(log=log, real=real / name))
        (opt / name).chmod(0o755)
    env = {"NETLAB_CNI_PATH": str(opt)}
    (opt / "bridge").chmod(0o777)
    res = without_debians("validate", "-t", str(topo), env=env)
    assert res.returncode == 2 and res.stderr.startswith(f"netlab: CNI plugin {opt}/bridge: netlab runs as root"), \
        res.stderr
    assert not log.exists()  # no plugin ran
    (opt / "bridge").chmod(0o755)

    def cni_paths(environ: dict | None) -> set[str]:
        out = netlab("plan", "-t", str(topo), "-o", "json", env=environ).stdout
        return {step["env"]["CNI_PATH"] for step in json.loads(out)["cni_add"]}

    assert cni_paths(env) == {str(opt)}
    labs.up(topo.read_text(), "t.yaml", env=env)
    assert cni_paths(None) == {str(opt)}  # the running lab's record: what its next up runs
    said = [line.split() for line in log.read_text().splitlines() if not line.startswith("VERSION")]
    assert said and all(words[1] == str(opt) for words in said), said  # the CNI_PATH up gave them: plan's
