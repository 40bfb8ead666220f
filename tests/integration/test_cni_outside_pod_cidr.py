"""A conflist whose IPAM gives pods addresses outside their node's podCIDR (root, Debian's bridge and host-local,
given 10.99.N.0/24 where the runtime asks for the node's 10.244.N.0/24): no other node reaches such a pod, as
Flannel routes only the pod CIDRs. `status` said "all as planned" and `trace` blamed the underlay's ip_forward
"as the lab plans it"; now `up` warns, `status` names the pod, its address, the node and its podCIDR, and `trace`
names it as why the packet reached the underlay. cn61: status called it drift (exit 1, "up does not repair
those differences"), but the address is the plugins' (containerd runs them whatever the podCIDR) and the lab
follows it: status warns, as up does, exit 0 (a lab of one node works, and says a node added would not reach it)."""

from __future__ import annotations

import json

import pytest

from helpers import ip_json, netlab, wrapped_bridge_lab

pytestmark = pytest.mark.root

# Debian's bridge behind a wrapper that moves the node's range (the ipRanges capability) to 10.99.N.0/24 and
# leaves out CNI_ARGS' IP= (host-local would take it), as a plugin with a range of its own does.
WRAPPER = r"""#!/bin/sh
CNI_ARGS=$(printf '%s' "$CNI_ARGS" | tr ';' '\n' | grep -v '^IP=' | paste -sd ';')
export CNI_ARGS
jq -c 'if .runtimeConfig.ipRanges then .runtimeConfig.ipRanges |= (tostring | gsub("10\\.244\\."; "10.99.")
       | fromjson) else . end' | /usr/lib/cni/bridge
"""


def outside(pod: str, ip: str, node: str, cidr: str) -> str:
    return (f"pod {pod}'s address {ip} (from its CNI result) is outside node {node}'s podCIDR {cidr}: the address is "
            f"its plugins' (the lab follows it), but Flannel routes only the pod CIDRs, so other nodes send it by their "
            f"default route to the underlay, which drops it")


def test_a_pod_address_outside_its_nodes_pod_cidr_is_drift_and_traces_name_it(labs, tmp_path):
    lab = labs.name("po")
    path, proc = labs.up(wrapped_bridge_lab(tmp_path, "outbr", WRAPPER, lab, "po-out") + """\
  - {name: a, node: n1}
  - {name: b, node: n2}
  - {name: c, node: n2}
""")
    got = {pod: ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-{pod}")[0]["addr_info"][0]["local"]
           for pod in "abc"}
    assert got["a"].startswith("10.99.0.") and got["b"].startswith("10.99.1."), got  # the kernel's addresses
    a_line, b_line = outside("a", got["a"], "n1", "10.244.0.0/24"), outside("b", got["b"], "n2", "10.244.1.0/24")
    assert a_line in proc.stderr and b_line in proc.stderr, proc.stderr  # up warns, and exits 0 (its plugins' say)

    st = netlab("status", "--lab", lab, check=False)  # the plugins' addresses, as planned: warned of, no drift
    assert st.returncode == 0 and st.stdout.endswith("all as planned\n"), st.stdout + st.stderr
    assert a_line in st.stderr and b_line in st.stderr, st.stderr
    js = json.loads(netlab("status", "--lab", lab, "-o", "json", check=False).stdout)
    assert js["ok"] and not js["drift"] and not js["kept"], js
    assert sum(w.startswith(a_line) or w.startswith(b_line) or "pod c's address" in w for w in js["warnings"]) == 3, js

    # b (n2) -> a (n1): n2 routes 10.99.0.x by its default route to the underlay, which forwards nothing.
    tr = netlab("trace", "b", "a", "--lab", lab, check=False)
    assert tr.returncode != 0, tr.stdout
    result = next(line for line in tr.stdout.splitlines() if line.startswith("result: "))
    assert result.startswith("result: LOST at hop ") and f"{lab}-underlay br0" in result, result
    assert f"it came here because {a_line}" in result, result
    # b -> c, on one node: delivered, nothing said
    same = netlab("trace", "b", "c", "--lab", lab, check=False)
    assert same.returncode == 0 and "outside node" not in same.stdout, same.stdout


def test_a_one_node_lab_with_a_range_of_its_own_works_and_status_says_all_as_planned(labs, tmp_path):
    """cn61's case: the pods of the lab's one node reach each other through the plugins' bridge, and status called
    their addresses drift (exit 1). Now all as planned (exit 0), with the warning of what a node added would not
    reach."""
    lab = labs.name("po")
    path, proc = labs.up(wrapped_bridge_lab(tmp_path, "outbr", WRAPPER, lab, "po-out").replace(
        "  - {name: n2, podCIDR: 10.244.1.0/24}\n", "") + """\
  - {name: a, node: n1}
  - {name: b, node: n1}
""")
    got = {pod: ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-{pod}")[0]["addr_info"][0]["local"]
           for pod in "ab"}
    assert all(ip.startswith("10.99.0.") for ip in got.values()), got
    reach = json.loads(netlab("probe", "--lab", lab, "--no-services", "-o", "json").stdout)
    assert reach["ok"] and any((p["source"], p["destination"]) == ("a", "b") for p in reach["probes"]), reach
    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 0 and st.stdout.endswith("all as planned\n"), st.stdout + st.stderr
    said = (f"pod a's address {got['a']} (from its CNI result) is outside node n1's podCIDR 10.244.0.0/24: the address "
            "is its plugins' (the lab follows it), but Flannel routes only the pod CIDRs, so a node added to the lab "
            "would send it by its default route to the underlay, which drops it")
    assert said in st.stderr and said in proc.stderr, (st.stderr, proc.stderr)
