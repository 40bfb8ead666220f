"""trace from a pod whose route lookup fails, on a real lab (root): the first row names the device the kernel has
there, and the kernel's own words, as `ip -j route get` and a real socket in that namespace get them."""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import in_netns, ip, ip_json, netlab

pytestmark = pytest.mark.root


def test_a_pod_whose_eth0_is_down_names_eth0_on_the_first_row(labs):
    """The pod's eth0 set down takes all its routes: the row of its failed lookup said device "-"."""
    lab = labs.name("trq")
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}, {{name: b, node: n1}}]\n")
    a = f"{lab}-a"
    b_ip = ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-b")[0]["addr_info"][0]["local"]
    subprocess.run(["ip", "-n", a, "link", "set", "eth0", "down"], check=True)
    # The kernel's view: eth0 down, no route left, and route get refused with the kernel's words.
    [link] = ip_json("link", "show", "eth0", netns=a)
    assert "UP" not in link["flags"] and link["operstate"] == "DOWN", link
    assert ip_json("route", "show", netns=a) == []
    got = ip("-j", "route", "get", b_ip, netns=a, check=False)
    assert got.returncode != 0 and got.stdout.strip() in ("", "[]"), got
    message = got.stderr.strip().removeprefix("RTNETLINK answers: ")
    # Real traffic: a socket there gets the same refusal.
    code = ("import socket,sys,os\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "try:\n s.sendto(b'x',(sys.argv[1],9)); print('sent')\nexcept OSError as e: print(os.strerror(e.errno))\n")
    assert in_netns(a, "python3", "-c", code, b_ip, check=True).stdout.strip() == message
    proc = netlab("trace", "--lab", lab, "a", "b", "-o", "json", check=False, timeout=60)
    assert proc.returncode == 1, proc.stderr
    d = json.loads(proc.stdout)
    [row] = d["hops"]
    assert (row["netns"], row["device"], row["kind"]) == (a, "eth0", "drop"), row
    assert row["facts"] == {"error": message, "up": False}, row
    assert row["decision"] == f"route get {b_ip}: {message} (eth0 is down: no route left through it)", row
    assert (d["lost"]["netns"], d["lost"]["device"]) == (a, "eth0"), d["lost"]
    text = netlab("trace", "--lab", lab, "a", "b", check=False).stdout
    assert f"LOST at hop 1 ({a} eth0): no route to {b_ip} in {a}: {message}: eth0 is down there" in text, text
