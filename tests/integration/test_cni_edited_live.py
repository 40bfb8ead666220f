"""A conflist edited in place while its lab is up (QA q3 #1, #3): root, Debian's bridge, host-local and loopback.

The chain is a wrapper the test writes into its tmp_path (``ccw``, root's, 0755): it fails an ADD whose config has
``"marker": "bad"``, or any ADD of pod a while the file ``fail-a`` exists, and otherwise execs Debian's bridge with
the same stdin. Checked with ``ip -j`` in the pods' namespaces and the CNI log (what each plugin got on stdin):

* status names the pods attached with the old config; a plain up refuses before anything runs;
* up --reconfigure re-attaches every pod: DEL with the old config, ADD with the new one (the new MTU on eth0);
* a re-attach whose ADD fails attaches the pod again with the config it had (eth0 and its address back);
* when that ADD fails too, the failure says the pod is left detached, and the next up attaches it;
* a new lab's failed up keeps a copy of its calls in NETLAB_CNI_LOG's file, which the failure names (its rollback
  takes the lab's log);
* `up --watch` says once that the conflist changed and names `up -t FILE --reconfigure` (its plain repair was refused
  at every resync, "repair failed" for ever), and follows that command;
* a conflist edited into one that cannot be read (NaN) is drift in validate's words (status said "all as planned"),
  and the `up -t FILE --reconfigure` it names mends the lab once the file is valid (QA q17 #5).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import as_planned_here, ip, ip_json, lab_namespaces, netlab, up_here, write_topology
from netlab import Lab
from netlab.api.lab_pods import logged_calls
from netlab.errors import netlab_command, netlab_words
from watching import watching

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"

WRAPPER = r"""#!/bin/sh
conf=$(cat)
pod=$(echo "$CNI_ARGS" | tr ';' '\n' | sed -n 's/^K8S_POD_NAME=//p')
if [ "$CNI_COMMAND" = ADD ] && {{ echo "$conf" | grep -q '"marker": *"bad"' || \
   {{ [ -e {dir}/fail-a ] && [ "$pod" = a ]; }}; }}; then
  echo '{{"cniVersion": "1.0.0", "code": 11, "msg": "ccw refuses"}}'
  exit 1
fi
printf '%s' "$conf" | exec {bin}/bridge
"""


def _conflist(mtu: int, marker: str | None) -> str:
    plugin = {"type": "ccw", "bridge": "ccbr0", "isGateway": True, "isDefaultGateway": True, "mtu": mtu,
              "ipam": {"type": "host-local"}, "capabilities": {"ipRanges": True}}
    if marker:
        plugin["marker"] = marker
    return json.dumps({"cniVersion": "1.0.0", "name": "cced", "plugins": [plugin]})


@pytest.fixture(autouse=True)
def plugins_installed():
    assert os.access(f"{CNI_BIN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"


def _eth0(lab: str, pod: str) -> list[tuple[int, list[str]]]:
    """(mtu, IPv4 addresses) of the pod's eth0, as the kernel has it (none: no eth0)."""
    return [(ln["mtu"], [a["local"] for a in ln["addr_info"] if a["family"] == "inet"])
            for ln in ip_json("addr", netns=f"{lab}-{pod}") if ln["ifname"] == "eth0"]


def _markers(lab: str, pod: str) -> list[tuple[str, object]]:
    log = logged_calls(lab, Lab(lab).model, pod)  # `cni log -o json POD`'s calls, read in this process
    return [(c["command"], c["stdin"].get("marker")) for c in log if c["plugin"] == "ccw" and c["command"] != "CHECK"]


def _topology(labs, tmp_path: Path, mtu: int, marker: str | None, prefix: str = "cc") -> tuple[str, Path, str]:
    """(lab, conflist, topology text): pods a and b on n1, through the wrapper (root's tmp_path, 0755)."""
    lab = labs.name(prefix)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ccw").write_text(WRAPPER.format(dir=tmp_path, bin=CNI_BIN))
    (tmp_path / "bin" / "ccw").chmod(0o755)
    conflist = tmp_path / "net.conflist"
    conflist.write_text(_conflist(mtu, marker))
    text = (f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
            "nodes: [{name: n1}]\npods:\n  - {name: a, node: n1, ip: 10.244.0.2}\n"
            "  - {name: b, node: n1, ip: 10.244.0.3}\n")
    return lab, conflist, text


def test_an_edited_conflist_is_said_refused_and_reconfigure_re_attaches(labs, tmp_path):
    lab, conflist, text = _topology(labs, tmp_path, 1450, None)
    path = labs.up_here(text)
    assert _eth0(lab, "a") == [(1450, ["10.244.0.2"])]

    conflist.write_text(_conflist(1300, "new"))  # in place: the same path
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode != 0 and (f"cni: conflist {conflist} changed since pods a, b were attached with it"
                                       in status.stdout), status.stdout
    # the repair named is the one that works: a plain up refuses (QA qr3 1)
    repair = netlab_command(f"up -t {path} --reconfigure")
    assert status.stdout.splitlines()[-1] == f"run `{repair}` to repair", status.stdout
    assert json.loads(netlab("status", "--lab", lab, "-o", "json", check=False).stdout)["repair"] == repair
    assert netlab("status", "-t", path, check=False).stdout.splitlines()[-1] == f"run `{repair}` to apply it"
    before = len(_markers(lab, "a"))
    refused = netlab("up", "-t", path, check=False)
    assert refused.returncode == 2 and f"`{repair}` re-attaches them" in \
        refused.stderr, refused.stderr
    assert len(_markers(lab, "a")) == before and _eth0(lab, "a") == [(1450, ["10.244.0.2"])]  # nothing ran

    done = netlab(*netlab_words(repair) or [])  # the command status named
    assert f"re-attached pod a through CNI (conflist {conflist} changed since its ADD)" in done.stdout, done.stdout
    for pod, addr in (("a", "10.244.0.2"), ("b", "10.244.0.3")):
        assert _markers(lab, pod)[-2:] == [("DEL", None), ("ADD", "new")]  # DEL with the old config, ADD the new
        assert _eth0(lab, pod) == [(1300, [addr])]
    assert as_planned_here(lab)

    # The new config's ADD fails: each pod is attached again with the config it had (MTU 1300), and said so
    conflist.write_text(_conflist(1400, "bad"))
    failed = netlab("up", "-t", path, "--reconfigure", check=False)
    assert failed.returncode == 4 and len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert failed.stderr.strip().endswith(  # b too
        "; then pod a was attached again with the config it had before (and 1 more pods failed); rolled back"), \
        failed.stderr
    assert _markers(lab, "a")[-3:] == [("ADD", "bad"), ("DEL", "bad"), ("ADD", "new")]
    assert _eth0(lab, "a") == [(1300, ["10.244.0.2"])] and _eth0(lab, "b") == [(1300, ["10.244.0.3"])]

    # A repair whose ADD fails, and the ADD with the config a had too: a is left detached, which the line says
    conflist.write_text(_conflist(1300, "new"))
    assert as_planned_here(lab)
    ip("route", "del", "default", netns=f"{lab}-a")  # bridge's CHECK fails for a: up re-attaches it
    (tmp_path / "fail-a").write_text("")
    detached = netlab("up", "-t", path, check=False)
    assert detached.returncode == 4 and detached.stderr.strip().endswith(
        f"rolled back, but for pod a, left detached (no eth0: the DEL before its ADD cannot be undone; "
        f"`{netlab_command(f'up --lab {lab}')}` attaches it again)"), detached.stderr
    assert _eth0(lab, "a") == [] and _eth0(lab, "b") == [(1300, ["10.244.0.3"])]
    (tmp_path / "fail-a").unlink()
    up_here(path)
    assert _eth0(lab, "a") == [(1300, ["10.244.0.2"])]
    assert as_planned_here(lab)
    assert Path(path).exists()


def test_a_new_labs_failed_up_keeps_its_calls_where_netlab_cni_log_says(labs, tmp_path):
    lab, _, text = _topology(labs, tmp_path, 1450, "bad")
    kept = tmp_path / "kept.jsonl"
    _, proc = labs.up(text, check=False, env={"NETLAB_CNI_LOG": str(kept)})
    assert proc.returncode == 4 and proc.stderr.strip().endswith(
        f"rolled back (and the lab's CNI log with it; this run's calls: {kept})"), proc.stderr
    assert not lab_namespaces(lab) and not netlab("cni", "log", "--lab", lab, check=False).returncode == 0
    calls = [json.loads(line) for line in kept.read_text().splitlines()]
    adds = [c for c in calls if c["plugin"] == "ccw" and c["command"] == "ADD"]
    assert {c["pod"] for c in adds} == {"a", "b"}
    add = next(c for c in adds if c["pod"] == "a")  # what the failing call got and said
    assert add["stdin"]["marker"] == "bad" and add["stdin"]["runtimeConfig"] == {"ipRanges": [[{
        "subnet": "10.244.0.0/24"}]]}
    assert add["env"]["CNI_NETNS"] == f"/run/netns/{lab}-a" and "K8S_POD_NAME=a" in add["env"]["CNI_ARGS"]
    assert add["exit_code"] == 1 and "ccw refuses" in add["stdout"]
    assert add["elapsed_s"] == add["duration"] and isinstance(add["elapsed_s"], float)  # docs/json.md's key
    assert ("a", "ccw", "DEL") in [(c["pod"], c["plugin"], c["command"]) for c in calls]  # the DEL that followed


def test_a_watcher_says_once_that_the_conflist_changed_and_follows_the_reconfigure(labs, tmp_path):
    lab, conflist, text = _topology(labs, tmp_path, 1450, None, prefix="cr")
    path = write_topology(tmp_path, text, "topo.yaml")
    refused = "did: nothing: a plain up refuses a lab whose pods were attached with a config edited since; " \
        f"`{netlab_command(f'up -t {path} --reconfigure')}` re-attaches them (this watcher follows it)"
    with watching(lab) as start:
        watcher = start(path, resync="1")
        assert _eth0(lab, "a") == [(1450, ["10.244.0.2"])]
        conflist.write_text(_conflist(1300, "new"))  # in place, while the watcher watches
        first = watcher.wait_for_line(refused, timeout=30)
        assert f"cni: conflist {conflist} changed since pods a, b were attached with it" in first, first
        ip("route", "del", "default", netns=f"{lab}-a")  # something else changes: said once more, not repaired
        watcher.wait_for_event(f"route default deleted in {lab}-a", timeout=30)
        netlab("up", "-t", path, "--reconfigure")  # the command the line named
        for pod, addr in (("a", "10.244.0.2"), ("b", "10.244.0.3")):
            assert _eth0(lab, pod) == [(1300, [addr])] and _markers(lab, pod)[-2:] == [("DEL", None), ("ADD", "new")]
        netlab("status", "--lab", lab)  # exit 0: as planned, the default route back with a's new ADD
        after = len(watcher.lines)  # the reconfigure's own round says nothing: it left the lab as planned
        ip("route", "del", "default", netns=f"{lab}-b")  # the watcher repairs again
        # Its line names the deletion by what woke it: the notification ("route default deleted in L-b") when it
        # waited idle; the reconfigure ("pid N (netlab up) changed the lab") when the round that takes in that
        # command's lock (a look at the lock file) heard it too; only the check's words ("cni: CHECK of pod b
        # failed") when a round already under way (the reconfigure's late echo) read the lab after it. No outside
        # wait tells these apart, and no CLI's start time orders them: the repair is what this test needs.
        repaired = watcher.wait_for_line("did: re-attached pod b through CNI", timeout=30, after=after)
        saw = repaired.split("; did: ")[0]
        assert "did: nothing" not in repaired and ("pod b" in saw or f"{lab}-b" in saw), repaired
        assert [r["dst"] for r in ip_json("route", netns=f"{lab}-b")].count("default") == 1
        lines = list(watcher.lines)
    said = [line for line in lines if refused in line]
    assert len(said) == 2 and "route default deleted" in said[1], lines  # the edit, then the deleted route: once each
    assert not [line for line in lines if "repair failed" in line], lines


def test_a_conflist_edited_into_one_that_cannot_be_read_is_drift_and_reconfigure_mends_it(labs, tmp_path):
    """QA q17 #5: status said "all as planned" (exit 0) of a lab whose conflist has NaN, while up --lab refused it."""
    lab, conflist, text = _topology(labs, tmp_path, 1450, None, prefix="sd")
    path = labs.up_here(text)
    conflist.write_text(_conflist(1450, None).replace('"mtu": 1450', '"mtu": NaN'))  # in place: not JSON
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1, status.stdout + status.stderr
    assert f"cni: network.cni.conflist: {conflist}: is not JSON (line 1 column " in status.stdout, status.stdout
    assert "pods a, b were attached with it before it was edited" in status.stdout, status.stdout
    repair = netlab_command(f"up -t {path} --reconfigure")
    # its up refuses the lab until the file can be read: the footer says the fix comes first (QA q19)
    assert status.stdout.splitlines()[-1] == f"fix the conflist first (the cni: line says how), then run `{repair}` " \
        "to repair", status.stdout
    assert netlab(*netlab_words(repair) or [], check=False).returncode == 2
    validate = netlab("validate", "-t", path, check=False)  # the same words
    assert f"network.cni.conflist: {conflist}: is not JSON (line 1 column " in validate.stdout + validate.stderr
    again = netlab("up", "--lab", lab, check=False)  # up refuses it before anything: validate's line, exit 2 (QA q42 2)
    assert again.returncode == 2 and f"{conflist}: is not JSON (line 1 column " in again.stderr, again.stderr
    assert _eth0(lab, "a") == [(1450, ["10.244.0.2"])]  # the pods run on with the config they were attached with
    conflist.unlink()  # deleted: said so, not "edited" (QA q19)
    gone = netlab("status", "--lab", lab, check=False)
    assert gone.returncode == 1, gone.stdout + gone.stderr
    assert (f"cni: network.cni.conflist: {conflist}: no such file; pods a, b were attached with it before it was "
            f"deleted (or moved) ") in gone.stdout, gone.stdout
    assert "put the file back, or point the topology's network.cni.conflist at its new path" in gone.stdout
    assert gone.stdout.splitlines()[-1] == status.stdout.splitlines()[-1], gone.stdout
    conflist.write_text(_conflist(1300, "new"))  # fixed: valid, and another config than the pods'
    netlab(*netlab_words(repair) or [])  # the command status named
    assert _eth0(lab, "a") == [(1300, ["10.244.0.2"])] and _eth0(lab, "b") == [(1300, ["10.244.0.3"])]
    assert as_planned_here(lab)


def test_a_lab_brought_up_under_another_name_is_named_in_the_reconfigure_status_says(labs, tmp_path):
    """QA q32 1: a lab brought up from a file under a name of its own (Lab.up(FILE, name=...), every pytest plugin
    lab), its conflist edited: status named `sudo netlab up -t FILE --reconfigure`, which made a second lab (the
    file's) and left this one drifting. It names the Python call with name= (no `netlab up` names a file's lab),
    as a command; run for real, it re-attaches this lab's pods, and makes no other lab."""
    import shlex
    import subprocess
    import sys

    other, conflist, text = _topology(labs, tmp_path, 1450, None, prefix="kd")  # the file names `other`
    lab = labs.name("kd")
    path = write_topology(tmp_path, text)
    subprocess.run([sys.executable, "-c", f"from netlab import Lab; Lab.up({path!r}, name={lab!r})"], check=True)
    assert _eth0(lab, "a") == [(1450, ["10.244.0.2"])] and lab_namespaces(other) == []

    conflist.write_text(_conflist(1300, "new"))
    call = f"Lab.up({path!r}, name={lab!r}, reconfigure=True)"
    folder = os.environ.get("NETLAB_STATE_DIR")  # after sudo, which drops the environment (errors.python_command)
    env = f"NETLAB_STATE_DIR={shlex.quote(folder)} " if folder else ""
    want = f"sudo {env}{sys.executable} -c \"from netlab import Lab; {call}\""
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and status.stdout.splitlines()[-1] == f"run `{want}` to repair", status.stdout
    assert f"`{want}` re-attaches them with the new one" in status.stdout, status.stdout  # the cni: line
    assert json.loads(netlab("status", "--lab", lab, "-o", "json", check=False).stdout)["repair"] == want
    said = subprocess.run([sys.executable, "-c", f"from netlab import Lab; s = Lab({lab!r}).status(); "
                           "print(s.repair); print(*s.drift, sep='\\n')"], check=True, capture_output=True, text=True)
    assert said.stdout.splitlines()[0] == call and f"`{call}` re-attaches them" in said.stdout, said.stdout

    assert shlex.split(want)[0] == "sudo"
    # the command status named, for real, as a shell runs it (root already: no sudo, which drops the environment:
    # the line itself names the state folder)
    shell_env = {k: v for k, v in os.environ.items() if k != "NETLAB_STATE_DIR"}
    subprocess.run(["sh", "-c", want.removeprefix("sudo ")], check=True, env=shell_env)
    for pod, addr in (("a", "10.244.0.2"), ("b", "10.244.0.3")):
        assert _markers(lab, pod)[-2:] == [("DEL", None), ("ADD", "new")]  # re-attached with the new config
        assert _eth0(lab, pod) == [(1300, [addr])]
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
    assert lab_namespaces(other) == []  # no second lab


def test_a_lab_made_from_a_dict_is_named_in_the_reconfigure_status_says(labs, tmp_path):
    """QA 61 3: a lab made from a dict (every pytest plugin dict lab), its conflist edited: status named `sudo
    netlab up -t FILE --reconfigure` and Lab.status `Lab.up(TOPOLOGY, reconfigure=True)`, neither of which a user
    can run for it (there is no file). They name the lab: `up --lab L --reconfigure`, `Lab('L').repair(
    reconfigure=True)`; run for real, it re-attaches the pods with the new config."""
    import subprocess
    import sys

    import yaml

    lab, conflist, text = _topology(labs, tmp_path, 1450, None, prefix="cnd")
    topo = yaml.safe_load(text)
    topo["network"]["cni"] = {"conflist": str(conflist), "binDir": str(tmp_path / "bin")}
    subprocess.run([sys.executable, "-c", f"from netlab import Lab; Lab.up({topo!r})"], check=True)
    assert _eth0(lab, "a") == [(1450, ["10.244.0.2"])]

    conflist.write_text(_conflist(1300, "new"))
    want = netlab_command(f"up --lab {lab} --reconfigure")
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and status.stdout.splitlines()[-1] == f"run `{want}` to repair", status.stdout
    assert f"`{want}` re-attaches them with the new one" in status.stdout, status.stdout  # the cni: line
    call = f"Lab({lab!r}).repair(reconfigure=True)"
    said = subprocess.run([sys.executable, "-c", f"from netlab import Lab; s = Lab({lab!r}).status(); "
                           "print(s.repair); print(*s.drift, sep='\\n')"], check=True, capture_output=True, text=True)
    assert said.stdout.splitlines()[0] == call and f"`{call}` re-attaches them" in said.stdout, said.stdout
    netlab(*netlab_words(want) or [])  # the command status named
    for pod, addr in (("a", "10.244.0.2"), ("b", "10.244.0.3")):
        assert _markers(lab, pod)[-2:] == [("DEL", None), ("ADD", "new")]  # re-attached with the new config
        assert _eth0(lab, pod) == [(1300, [addr])]
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
