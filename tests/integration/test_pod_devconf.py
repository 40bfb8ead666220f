"""A pod's IPv4 all/default settings are its node's (root), in both kube-proxy modes.

On a real node the runtime makes each pod's network namespace there, and a new namespace copies init_net's (the
node's) IPv4 ``all`` and ``default`` devconf (devconf_inherit_init_net=0): so ``kubectl exec POD -- sysctl
net.ipv4.ip_forward`` prints 1 (all and default forwarding 1; writing ip_forward=1 makes the kernel set
all.accept_redirects=0 too), and with kube-proxy in iptables mode all.route_localnet is 1. netlab makes pods from
the machine's namespace; it writes its node's values into each, and `status` and `up` hold them.
"""

from __future__ import annotations

import json

import pytest
from helpers import in_netns, netlab, state_path

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes:
  - {{name: n1, ip: 192.168.122.215, podCIDR: 10.244.0.0/24}}
  - {{name: n2, ip: 192.168.122.7, podCIDR: 10.244.1.0/24}}
pods:
  - {{name: p1, node: n1, labels: {{app: web}}}}
  - {{name: p2, node: n2, labels: {{app: web}}}}
services:
  - {{name: web, selector: {{app: web}}, type: NodePort, ports: [{{port: 80, targetPort: 8080}}]}}
"""

# netlab's own marker of a lab namespace (kernel/nstag.py), which differs from namespace to namespace.
TAGS = ("net.ipv4.conf.all.tag", "net.ipv4.conf.default.tag")


def devconf(netns: str) -> dict[str, str]:
    """Every IPv4 all/default setting and ip_forward, as sysctl(8) prints them in the namespace."""
    out = in_netns(netns, "sysctl", "-a", "-r", r"^net\.ipv4\.(ip_forward$|conf\.(all|default)\.)",
                   check=True).stdout
    values = dict(line.split(" = ", 1) for line in out.splitlines() if " = " in line)
    return {k: v for k, v in values.items() if k not in TAGS}


@pytest.mark.parametrize("mode, localnet", [("iptables", "1"), ("nftables", "0")])
def test_a_pods_all_and_default_settings_are_its_nodes(labs, mode, localnet):
    lab = labs.name("fd")
    labs.up(TOPOLOGY.format(lab=lab, mode=mode))
    for pod, node in (("p1", "n1"), ("p2", "n2")):
        mine, nodes = devconf(f"{lab}-{pod}"), devconf(f"{lab}-{node}")
        assert len(mine) > 40 and mine == nodes, sorted(set(mine.items()) ^ set(nodes.items()))
        assert (mine["net.ipv4.ip_forward"], mine["net.ipv4.conf.all.forwarding"],
                mine["net.ipv4.conf.default.forwarding"], mine["net.ipv4.conf.all.accept_redirects"],
                mine["net.ipv4.conf.all.route_localnet"]) == ("1", "1", "1", "0", localnet), mine
        eth0 = in_netns(f"{lab}-{pod}", "sysctl", "-n", "net.ipv4.conf.eth0.forwarding", check=True).stdout
        assert eth0.strip() == "1"  # the pod's eth0 was made after: it copied default's
    # A pod made before (the machine's ip_forward=0, which sets all.accept_redirects back to 1): status names it,
    # one up writes the node's value again.
    in_netns(f"{lab}-p1", "sysctl", "-qw", "net.ipv4.ip_forward=0", check=True)
    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 1 and f"sysctl net.ipv4.ip_forward in {lab}-p1 (is 0, want 1)" in st.stdout, st.stdout
    netlab("up", "--lab", lab)
    assert devconf(f"{lab}-p1") == devconf(f"{lab}-n1")
    assert netlab("status", "--lab", lab, check=False).returncode == 0


def test_on_a_forwarding_host_nodes_and_pods_keep_the_kernels_forwarding_settings(labs):
    """A host that forwards (Docker's, a CI VM's) gives each new namespace ip_forward=1 and, from the kernel
    itself, all.accept_redirects=0 (devinet.c, inet_forward_change; the test hook writes ip_forward=1 in each new
    namespace, as this host has 0). That is the kernel's value of a forwarding namespace: the lab sets nothing
    back, so nodes and pods keep 0 as a real node has, and the underlay, which writes ip_forward=0, gets the
    kernel's 1 again. Was: accept_redirects set back to 1 in every namespace, nodes and pods included."""
    lab = labs.name("ar")
    hook = {"NETLAB_TEST_HOST_FORWARD": "1"}
    labs.up(TOPOLOGY.format(lab=lab, mode="iptables"), env=hook)
    want = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.forwarding": "1",
            "net.ipv4.conf.default.forwarding": "1", "net.ipv4.conf.all.accept_redirects": "0",
            "net.ipv4.conf.default.accept_redirects": "1"}
    for ns in ("n1", "p1", "n2", "p2"):
        mine = devconf(f"{lab}-{ns}")
        assert {k: mine[k] for k in want} == want, (ns, mine)
    under = devconf(f"{lab}-underlay")
    assert (under["net.ipv4.ip_forward"], under["net.ipv4.conf.all.accept_redirects"],
            under["net.ipv4.conf.default.accept_redirects"]) == ("0", "1", "1"), under
    with open(state_path(lab, "state.json")) as fh:
        assert "restored_devconf" not in json.load(fh)["extra"]
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    # The node stops forwarding (the kernel sets its all.accept_redirects to 1 with it): one drift, one repair.
    netlab("break", "ip-forward-off", "--lab", lab, "--target", "n1")
    assert devconf(f"{lab}-n1")["net.ipv4.conf.all.accept_redirects"] == "1"
    st = netlab("status", "--lab", lab, "-o", "json", check=False)
    assert st.returncode == 1
    drift = json.loads(st.stdout)["drift"]
    assert drift == [f"different: sysctl net.ipv4.ip_forward in {lab}-n1 (is 0, want 1)"], drift
    netlab("up", "--lab", lab, env=hook)
    assert devconf(f"{lab}-n1")["net.ipv4.conf.all.accept_redirects"] == "0"
    assert netlab("status", "--lab", lab, check=False).returncode == 0
