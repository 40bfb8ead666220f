"""Real labs (root): a port alone is TCP (or the pod's UDP-only port), ports are range-checked, a dict lab
is listed as <dict>, and the VXLAN row's TTLs are the outer's and the inner's.

Every lab is tiny, named fxe + 5 hex digits, and always taken down (the ``labs`` fixture checks nothing of
it is left, and that the host's namespace did not change).
"""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from helpers import netlab, two_node_topology
from netlab import Lab
from netlab.errors import UsageError

pytestmark = pytest.mark.root

# fedora-2 serves 5353 over UDP only, and 8080 over TCP (with the echo server's UDP twin).
UDP_POD = "ip: 10.244.1.3, containers: [{name: s, ports: [{containerPort: 5353, protocol: UDP}, " \
          "{containerPort: 8080}]}]}"


def fxe_name(labs) -> str:
    name = f"fxe{uuid.uuid4().hex[:5]}"
    labs.names.append(name)  # the fixture takes it down
    return name


def trace_json(lab: str, *args: str) -> dict:
    proc = netlab("trace", "--lab", lab, *args, "-o", "json", check=False, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_trace_port_range_and_ttls_on_a_real_lab(labs):
    lab = fxe_name(labs)
    labs.up(two_node_topology(lab, pods_per_node=1).replace("ip: 10.244.1.3}", UDP_POD))

    # 1. a port without --proto: TCP, or UDP to a port the pod serves over UDP only; delivered either way
    tcp = trace_json(lab, "fedora-1", "fedora-2", "--port", "8080")
    assert (tcp["proto"], tcp["port"], tcp["delivered"]) == ("tcp", 8080, True), tcp["lost"]
    udp = trace_json(lab, "fedora-1", "fedora-2", "--port", "5353")
    assert (udp["proto"], udp["port"], udp["delivered"]) == ("udp", 5353, True), udp["lost"]
    refused = netlab("trace", "--lab", lab, "fedora-1", "fedora-2", "--proto", "icmp", "--port", "80", check=False)
    assert refused.returncode == 2 and "ICMP echo has no port" in refused.stderr
    api = Lab.attach(lab)
    assert api.trace("fedora-1", "fedora-2", port=8080).proto == "tcp"

    # 2. a port out of range: a usage error, before anything is sent
    for port in (0, 70000):
        with pytest.raises(UsageError, match=f"port {port} is not in the range 1-65535"):
            api.reach("fedora-1", "fedora-2", proto="tcp", port=port)
        with pytest.raises(UsageError, match=f"port {port} is not in the range 1-65535"):
            api.trace("fedora-1", "fedora-2", proto="tcp", port=port)
    with pytest.raises(UsageError, match="sport 70000 is not in the range"):
        api.trace("fedora-1", "fedora-2", proto="tcp", port=8080, sport=70000)
    assert api.reach("fedora-1", "fedora-2", port=8080).protocol == "tcp"

    # 4. the VXLAN rows: the outer header's TTL (64, as sent by the node) and the inner one's (63: one router), in
    # the words `netlab capture` prints the frame in (tcpdump's)
    ping = trace_json(lab, "fedora-1", "fedora-2")
    vxlan = [h for h in ping["hops"] if h["evidence"] and ": VXLAN, flags [I] (0x08), vni 1 | inner " in h["evidence"]]
    assert vxlan, [h["evidence"] for h in ping["hops"]]
    for h in vxlan:
        outer, inner = h["evidence"].split(" | inner ")
        assert outer.startswith("IP (ttl 64) ") and f".{h['facts']['outer_sport']} > " in outer, h["evidence"]
        assert inner.startswith(f"IP (ttl 63) {ping['src']['ip']} > {ping['dst']['ip']}: ICMP echo request, id "), \
            h["evidence"]
        assert (h["facts"]["outer_ttl"], h["facts"]["ttl"]) == (64, 63)


def test_a_lab_from_a_dict_is_listed_as_a_dict(labs, tmp_path):
    name = fxe_name(labs)
    topology = yaml.safe_load(two_node_topology(name, pods_per_node=1))
    topology["nodes"], topology["pods"] = topology["nodes"][:1], topology["pods"][:1]
    lab = Lab.up(topology)
    try:
        listed = {row["lab"]: row for row in json.loads(netlab("list", "-o", "json").stdout)}
        assert listed[name]["source"] == "<dict>"
        table = next(line for line in netlab("list").stdout.splitlines() if line.startswith(name + " "))
        assert table.split()[-1] == "<dict>"
        path = tmp_path / "same.yaml"
        path.write_text(yaml.safe_dump(topology))
        with pytest.raises(UsageError) as err:  # another topology with the running lab's name
            Lab.up(str(path))
        assert f"lab {name} is up from a dict, and {path} has the same name" in str(err.value)
        assert "pass reconfigure=True" in str(err.value)
        cli = netlab("up", "-t", str(path), check=False)
        assert cli.returncode == 2 and "built-in default or a dict (no file)" in cli.stderr
        assert "--reconfigure" in cli.stderr
        # The same dict converges it, and the lab stays the first block's.
        same = Lab.up(topology)
        assert not same.owned and same.last_up is not None and not same.last_up.changed
    finally:
        lab.down()


def test_of_two_ups_of_one_lab_at_once_only_the_first_owns_it(labs, monkeypatch):
    """Lab.up decided it owned the lab (it was not up) before up took the lab's lock: another process's up of
    the same lab landing in between made both its owners, and the first to leave its with block took the lab
    down under the other. Ownership is now what up found under the lock."""
    from netlab.api import lifecycle

    name = fxe_name(labs)
    topology = yaml.safe_load(two_node_topology(name, pods_per_node=1))
    topology["nodes"], topology["pods"] = topology["nodes"][:1], topology["pods"][:1]
    real = lifecycle.up

    def another_up_first(*args, **kwargs):
        real(*args, **kwargs)  # the other process's, which got the lock first
        return real(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "up", another_up_first)
    with Lab.up(topology) as lab:
        assert not lab.owned
    monkeypatch.setattr(lifecycle, "up", real)
    assert json.loads(netlab("status", "--lab", name, "-o", "json").stdout)["ok"]  # left up: not this block's
    with Lab.up(topology) as again:
        assert not again.owned and again.last_up is not None and not again.last_up.changed
    netlab("down", "--lab", name)


def test_up_without_root_says_so_and_the_errors_are_exported():
    """A program run without sudo: Lab.up says root is needed first (it said "cannot write /run/netlab/...", the
    state directory's refusal, naming a file before the cause). Every error a caller may meet is a name of
    netlab.api (Interrupted, NetnsGone and StateCorrupt were not)."""
    import subprocess
    import sys

    import netlab.api as api

    assert issubclass(api.Interrupted, KeyboardInterrupt) and not issubclass(api.Interrupted, Exception)
    assert issubclass(api.StateCorrupt, api.NetlabError)
    assert issubclass(api.NetnsGone, api.NetlabError)
    assert {"Interrupted", "NetnsGone", "StateCorrupt"} <= set(api.__all__)
    code = ("from netlab import Lab\nfrom netlab.errors import EnvironmentNotReady\n"
            "try:\n    Lab.up({'name': 'fxenobody', 'nodes': [{'name': 'n1'}]})\n"
            "except EnvironmentNotReady as exc:\n    print(exc.exit_code, exc)\n")
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=60, cwd="/")
    if "No module named" in proc.stderr or "Permission denied" in proc.stderr:
        pytest.skip(f"this checkout's virtualenv cannot be run by uid 65534: {proc.stderr.strip()[-200:]}")
    assert proc.stdout.startswith("3 netlab needs root: a lab is made of network namespaces, and its state in "), \
        proc.stdout + proc.stderr
    assert proc.stdout.endswith(" is root's; run it with sudo\n"), proc.stdout  # the cause, then the fix
