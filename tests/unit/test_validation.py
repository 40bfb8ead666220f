"""Validation rules (issue 2, "Validation"): each bad input gives a located, one-line, actionable problem.

Most rules are checked in-process here (fast); ``test_bad_corpus.py`` runs a
corpus of bad files through the real CLI.
"""

from __future__ import annotations

import pytest

from netlab.errors import Problem, TopologyError
from netlab.model import naming
from netlab.model.load import load_topology
from netlab.model.checks import check_topology
from netlab.model.topology import Node, Topology

BASE = "name: x\nnodes: [{name: a}]\n"
VNI_WORDS = "VXLAN VNIs (the device flannel.<VNI> must fit the kernel's 15-byte interface names) must be 1-9999999"


def problems(text: str, tmp_path) -> list[Problem]:
    """Every problem load_topology reports for ``text`` ([] when it is valid)."""
    path = tmp_path / "t.yaml"
    path.write_text(text, "utf-8")
    try:
        load_topology(str(path))
    except TopologyError as exc:
        assert exc.problems, "a TopologyError must carry problems"
        return exc.problems
    return []


def find(text: str, tmp_path, expect: str) -> Problem:
    found = problems(text, tmp_path)
    hits = [p for p in found if expect in p.message]
    assert hits, f"no problem says {expect!r}; got:\n" + "\n".join(map(str, found))
    return hits[0]


def valid(text: str, tmp_path) -> None:
    found = problems(text, tmp_path)
    assert not found, "\n".join(map(str, found))


# (id, topology text, expected message text, expected field or None)
CASES = [
    # unknown keys
    ("unknown-top", "name: x\nnodez: []\nnodes: [{name: a}]\n", "did you mean 'nodes'?", "nodez"),
    ("unknown-nested", "name: x\nnodes: [{name: a, podCidr: 10.244.0.0/24}]\n", "did you mean 'podCIDR'?",
     "nodes[0].podCidr"),
    ("python-field-name", "name: x\ncluster: {pod_cidr: 10.244.0.0/16}\n" + BASE[8:], "unknown field 'pod_cidr'",
     "cluster.pod_cidr"),
    ("unknown-in-container", BASE + "pods: [{name: p, node: a, containers: [{name: c, image: nginx}]}]\n",
     "unknown field 'image'", "pods[0].containers[0].image"),
    ("missing-name", "nodes: [{name: a}]\n", "required field is missing; add name:", "name"),
    ("missing-pod-node", BASE + "pods: [{name: p}]\n", "add node:", "pods[0].node"),
    ("nodes-empty", "name: x\nnodes: []\n", "needs at least 1", "nodes"),
    ("nodes-null", "name: x\nnodes:\n", "has no value", "nodes"),
    ("nodes-mapping", "name: x\nnodes: {name: a}\n", "must be a list, not a mapping", "nodes"),
    ("cluster-list", "name: x\ncluster: []\n" + BASE[8:], "must be a mapping", "cluster"),
    # duplicates and references
    ("duplicate-node", "name: x\nnodes: [{name: a}, {name: a}]\n", "'a' is already used by nodes[0].name",
     "nodes[1].name"),
    ("duplicate-pod", BASE + "pods: [{name: p, node: a}, {name: p, node: a}]\n", "'p' is already used by pods[0].name",
     "pods[1].name"),
    ("pod-named-like-node", BASE + "pods: [{name: a, node: a}]\n", "share namespace names", "pods[0].name"),
    ("host-named-like-pod", BASE + "pods: [{name: p, node: a}]\ninternet: {hosts: [{name: p, ip: 203.0.113.9}]}\n",
     "already used by pods[0].name", "internet.hosts[0].name"),
    ("duplicate-container", BASE + "pods: [{name: p, node: a, containers: [{name: c}, {name: c}]}]\n",
     "duplicate container name 'c'", "pods[0].containers[1].name"),
    ("duplicate-port-across-containers",
     BASE + "pods: [{name: p, node: a, containers: [{name: c, ports: [{containerPort: 80}]}, "
            "{name: d, ports: [{containerPort: 80}]}]}]\n",
     "already declared by container 'c'", "pods[0].containers[1].ports[0]"),
    ("duplicate-service", BASE + "services: [{name: w, namespace: o, ports: [{port: 80}]}, "
                                 "{name: w, namespace: o, ports: [{port: 1}]}]\n",
     "service o/w is already defined", "services[1].name"),
    ("duplicate-service-port", BASE + "services: [{name: w, ports: [{port: 80}, {port: 80}]}]\n",
     "listed twice", "services[0].ports[1].port"),
    # The API server's rule: kube-proxy would give two unnamed TCP ports one chain (all to the first's target).
    ("impair-without-interface", BASE + "pods: [{name: p, node: a, impair: {rate: 10mbit}}]\n",
     "impair is keyed by interface: write impair: {eth0: {rate: ...}}", "pods[0].impair.rate"),
    # A targetPort is a number or an IANA service name (a named one is resolved per pod: test_service_endpoints).
    ("target-port-bad-name", BASE + "services: [{name: w, ports: [{port: 80, targetPort: Http}]}]\n",
     "'Http' is not a port name", "services[0].ports[0].targetPort"),
    ("target-port-quoted-number", BASE + "services: [{name: w, ports: [{port: 80, targetPort: '8080'}]}]\n",
     "write numbers without quotes", "services[0].ports[0].targetPort"),
    ("target-port-too-large", BASE + "services: [{name: w, ports: [{port: 80, targetPort: 70000}]}]\n",
     "70000 is not a port; ports are 1-65535", "services[0].ports[0].targetPort"),
    ("target-port-double-hyphen", BASE + "services: [{name: w, ports: [{port: 80, targetPort: web--http}]}]\n",
     "'web--http' is not a port name", "services[0].ports[0].targetPort"),
    # A container port's name is one a targetPort or a policy can give: IANA_SVC_NAME, unique in the pod.
    ("container-port-name-too-long", BASE + "pods: [{name: p, node: a, containers: [{name: c, ports: "
     "[{containerPort: 80, name: http-alternative}]}]}]\n", "'http-alternative' is not a port name",
     "pods[0].containers[0].ports[0].name"),
    ("container-port-name-digits", BASE + "pods: [{name: p, node: a, containers: [{name: c, ports: "
     "[{containerPort: 80, name: '8080'}]}]}]\n", "'8080' is not a port name", "pods[0].containers[0].ports[0].name"),
    ("container-port-name-twice", BASE + "pods: [{name: p, node: a, containers: [{name: c, ports: "
     "[{containerPort: 80, name: http}]}, {name: d, ports: [{containerPort: 81, name: http}]}]}]\n",
     "port name 'http' is already given to a port of container 'c'", "pods[0].containers[1].ports[0].name"),
    ("multi-port-service-unnamed", BASE + "services: [{name: w, ports: [{name: a, port: 80}, {port: 81}]}]\n",
     "2 ports, so each needs a name, as in Kubernetes", "services[0].ports[1].name"),
    ("unknown-node", BASE + "pods: [{name: p, node: b}]\n", "unknown node 'b'; use one of the nodes: a",
     "pods[0].node"),
    ("unknown-expect-from", BASE + "expect: [{from: ghost, to: a}]\n", "unknown pod, node or internet host 'ghost'",
     "expect[0].from"),
    ("expect-icmp-port", BASE + "expect: [{from: a, to: a, port: 80}]\n", "icmp has no port", "expect[0].port"),
    ("expect-tcp-no-port", BASE + "expect: [{from: a, to: a, proto: tcp}]\n", "tcp needs a port", "expect[0].port"),
    # names
    ("name-slash", "name: x\nnodes: [{name: a/b}]\n", "'a/b' is not a DNS label", "nodes[0].name"),
    ("name-dotdot", BASE + "pods: [{name: '..', node: a}]\n", "'..' is not a DNS label", "pods[0].name"),
    ("name-newline", BASE + 'pods: [{name: "p\\nq", node: a}]\n', "'p\\nq' is not a DNS label", "pods[0].name"),
    ("name-trailing-newline", 'name: "x\\n"\nnodes: [{name: a}]\n', "'x\\n' is not a DNS label", "name"),
    ("label-trailing-newline", BASE + 'pods: [{name: p, node: a, labels: {app: "web\\n"}}]\n', "label value",
     "pods[0].labels.app"),
    ("ip-trailing-newline", 'name: x\nnodes: [{name: a, ip: "192.168.122.5\\n"}]\n', "is not an IPv4 address",
     "nodes[0].ip"),
    ("name-percent", BASE + "pods: [{name: '50%', node: a}]\n", "'50%' is not a DNS label", "pods[0].name"),
    ("name-quote", BASE + "pods: [{name: \"it's\", node: a}]\n", "is not a DNS label", "pods[0].name"),
    ("name-space", BASE + "pods: [{name: 'a b', node: a}]\n", "'a b' is not a DNS label", "pods[0].name"),
    ("name-uppercase", BASE + "pods: [{name: Web, node: a}]\n", "'Web' is not a DNS label", "pods[0].name"),
    ("name-non-ascii", "name: café\nnodes: [{name: a}]\n", "is not a DNS label", "name"),
    ("name-leading-dash", "name: -x\nnodes: [{name: a}]\n", "is not a DNS label", "name"),
    ("name-escape-sequence", 'name: "x\\e[31m"\nnodes: [{name: a}]\n', "is not a DNS label", "name"),
    ("name-empty", "name: ''\nnodes: [{name: a}]\n", "is not a DNS label", "name"),
    ("name-too-long", "name: x\nnodes: [{name: " + "n" * 64 + "}]\n", "names are at most 63", "nodes[0].name"),
    ("lab-name-too-long", "name: " + "l" * 25 + "\nnodes: [{name: a}]\n", "at most 24", "name"),
    ("netns-too-long", "name: " + "l" * 24 + "\nnodes: [{name: " + "n" * 39 + "}]\n",
     "would be 64 characters", "nodes[0].name"),
    ("name-reserved", "name: x\nnodes: [{name: underlay}]\n", "reserved for the lab's own underlay", "nodes[0].name"),
    ("name-reserved-lb", BASE + "pods: [{name: lb, node: a}]\n", "reserved", "pods[0].name"),
    ("label-key-invalid", BASE + "pods: [{name: p, node: a, labels: {'-bad': x}}]\n", "label key '-bad'",
     'pods[0].labels["-bad"]'),
    ("label-key-empty", BASE + "pods: [{name: p, node: a, labels: {'': x}}]\n", "label key ''", 'pods[0].labels[""]'),
    ("label-key-space", BASE + "pods: [{name: p, node: a, labels: {'a b': x}}]\n", "label key 'a b'",
     'pods[0].labels["a\\u0020b"]'),
    ("label-key-name-too-long", BASE + "pods: [{name: p, node: a, labels: {x.io/" + "k" * 64 + ": v}}]\n",
     "label key 'x.io/kkkk", 'pods[0].labels["x.io/' + "k" * 35 + '..."]'),
    ("label-key-prefix-uppercase", BASE + "pods: [{name: p, node: a, labels: {Example.com/app: v}}]\n",
     "label key 'Example.com/app'", 'pods[0].labels["Example.com/app"]'),
    ("label-value-invalid", BASE + "pods: [{name: p, node: a, labels: {app: 'a/b'}}]\n", "label value 'a/b'",
     "pods[0].labels.app"),
    ("selector-invalid", BASE + "services: [{name: s, selector: {app: 'x y'}, ports: [{port: 80}]}]\n",
     "label value 'x y'", "services[0].selector.app"),
    ("command-nul", BASE + 'pods: [{name: p, node: a, containers: [{name: c, command: ["a\\0b"]}]}]\n',
     "NUL character", "pods[0].containers[0].command[0]"),
    ("command-program-blank", BASE + "pods: [{name: p, node: a, containers: [{name: c, command: ['  ', x]}]}]\n",
     "the program to run is empty", "pods[0].containers[0].command[0]"),
    ("command-empty", BASE + "pods: [{name: p, node: a, containers: [{name: c, command: []}]}]\n",
     "needs at least 1", "pods[0].containers[0].command"),
    # YAML booleans, numbers and nulls where other things are expected
    ("bool-name-no", "name: no\nnodes: [{name: a}]\n", "'no' is a YAML boolean here; quote it", "name"),
    ("bool-node-off", BASE + "pods: [{name: p, node: off}]\n", "'off' is a YAML boolean", "pods[0].node"),
    ("bool-label-on", BASE + "pods: [{name: p, node: a, labels: {app: on}}]\n", "'on' is a YAML boolean",
     "pods[0].labels.app"),
    ("bool-mode", BASE + "network: {mode: off}\n", "'off' is a YAML boolean", "network.mode"),
    ("bool-mtu", BASE + "network: {underlay: {mtu: off}}\n", "YAML boolean here, not a number", "network.underlay.mtu"),
    ("bool-key", BASE + "yes: 1\n", "key 'yes' is read as bool; quote it", "topology"),
    ("null-name", "name: null\nnodes: [{name: a}]\n", "'null' is YAML's null here", "name"),
    ("null-key", BASE + "~: 1\n", "is read as null", "topology"),
    ("number-name", "name: 1234\nnodes: [{name: a}]\n", "1234 is a number here; quote it", "name"),
    ("number-command", BASE + "pods: [{name: p, node: a, containers: [{name: c, command: [sleep, 10]}]}]\n",
     "10 is a number here", "pods[0].containers[0].command[1]"),
    ("string-port", BASE + "services: [{name: s, ports: [{port: \"80\"}]}]\n", "'80' is text here",
     "services[0].ports[0].port"),
    ("float-port", BASE + "network: {vxlan: {port: 8472.5}}\n", "not a whole number", "network.vxlan.port"),
    ("reach-string", BASE + "expect: [{from: a, to: a, reach: 'yes'}]\n", "must be true or false", "expect[0].reach"),
    ("literal-mode", BASE + "network: {mode: flannel}\n", "'flannel' is not allowed; use 'vxlan' or 'host-gw'",
     "network.mode"),
    ("literal-protocol", BASE + "services: [{name: s, ports: [{port: 80, protocol: tcp}]}]\n",
     "use 'TCP' or 'UDP'", "services[0].ports[0].protocol"),
    ("literal-type", BASE + "services: [{name: s, type: nodeport, ports: [{port: 80}]}]\n", "'nodeport' is not allowed",
     "services[0].type"),
    # CIDRs
    ("cidr-malformed", "name: x\ncluster: {podCIDR: 10.244.0/16}\nnodes: [{name: a}]\n", "is not an IPv4 CIDR",
     "cluster.podCIDR"),
    ("cidr-host-bits", "name: x\ncluster: {serviceCIDR: 10.96.0.1/12}\nnodes: [{name: a}]\n",
     "has host bits set; did you mean 10.96.0.0/12?", "cluster.serviceCIDR"),
    ("cidr-no-prefix", "name: x\nnetwork: {underlay: {cidr: 192.168.1.0}}\nnodes: [{name: a}]\n",
     "has no prefix length", "network.underlay.cidr"),
    ("cidr-bad-prefix", "name: x\ncluster: {podCIDR: 10.244.0.0/33}\nnodes: [{name: a}]\n", "is not an IPv4 CIDR",
     "cluster.podCIDR"),
    ("cidr-netmask-form", "name: x\ncluster: {podCIDR: 10.244.0.0/255.255.0.0}\nnodes: [{name: a}]\n",
     "is not an IPv4 CIDR", "cluster.podCIDR"),
    ("cidr-leading-zero", "name: x\ncluster: {podCIDR: 010.244.0.0/16}\nnodes: [{name: a}]\n", "is not an IPv4 CIDR",
     "cluster.podCIDR"),
    ("cidr-ipv6", "name: x\ncluster: {podCIDR: 'fd00::/64'}\nnodes: [{name: a}]\n", "is not an IPv4 CIDR",
     "cluster.podCIDR"),
    ("cidr-number", "name: x\ncluster: {podCIDR: 10}\nnodes: [{name: a}]\n", "must be an IPv4 CIDR written as a string",
     "cluster.podCIDR"),
    ("cidr-loopback", "name: x\nnetwork: {underlay: {cidr: 127.0.0.0/24}}\nnodes: [{name: a}]\n", "loopback",
     "network.underlay.cidr"),
    ("cidr-everything", "name: x\ncluster: {podCIDR: 0.0.0.0/0}\nnodes: [{name: a}]\n", "unspecified range",
     "cluster.podCIDR"),
    ("overlap-pod-service", "name: x\ncluster: {podCIDR: 10.0.0.0/8}\nnodes: [{name: a}]\n",
     "10.0.0.0/8 overlaps the default cluster.serviceCIDR 10.96.0.0/12", "cluster.podCIDR"),
    ("overlap-underlay-pod", "name: x\nnetwork: {underlay: {cidr: 10.244.7.0/24}}\nnodes: [{name: a}]\n",
     "overlaps the default cluster.podCIDR", "network.underlay.cidr"),
    ("overlap-underlay-service", "name: x\nnetwork: {underlay: {cidr: 10.100.0.0/24}}\nnodes: [{name: a}]\n",
     "overlaps the default cluster.serviceCIDR", "network.underlay.cidr"),
    ("overlap-internet", BASE + "internet: {cidr: 192.168.0.0/16, gateway: {ip: 192.168.200.1}}\n",
     "overlaps the default network.underlay.cidr", "internet.cidr"),
    ("underlay-too-small", "name: x\nnetwork: {underlay: {cidr: 192.168.122.0/30}}\nnodes: [{name: a}]\n",
     "needs at least a /29", "network.underlay.cidr"),
    ("nodemask-vs-podcidr", "name: x\ncluster: {podCIDR: 10.244.0.0/20, nodeMask: 16}\nnodes: [{name: a}]\n",
     "nodeMask /16 is larger than podCIDR", "cluster.nodeMask"),
    ("node-podcidr-outside", "name: x\nnodes: [{name: a, podCIDR: 10.1.0.0/24}]\n", "is not inside cluster.podCIDR",
     "nodes[0].podCIDR"),
    ("node-podcidr-size", "name: x\nnodes: [{name: a, podCIDR: 10.244.0.0/25}]\n", "node blocks are /24",
     "nodes[0].podCIDR"),
    ("node-podcidr-duplicate", "name: x\nnodes: [{name: a, podCIDR: 10.244.3.0/24}, {name: b, podCIDR: 10.244.3.0/24}]\n",
     "is already the pod CIDR of node 'a'", "nodes[1].podCIDR"),
    # explicit addresses
    ("node-ip-outside", "name: x\nnodes: [{name: a, ip: 10.1.2.3}]\n", "is not a host address of the underlay",
     "nodes[0].ip"),
    ("node-ip-network", "name: x\nnodes: [{name: a, ip: 192.168.122.0}]\n", "is not a host address", "nodes[0].ip"),
    ("node-ip-broadcast", "name: x\nnodes: [{name: a, ip: 192.168.122.255}]\n", "is not a host address", "nodes[0].ip"),
    ("node-ip-gateway", "name: x\nnodes: [{name: a, ip: 192.168.122.1}]\n", "already used by the lab's gateway",
     "nodes[0].ip"),
    ("node-ip-duplicate", "name: x\nnodes: [{name: a, ip: 192.168.122.9}, {name: b, ip: 192.168.122.9}]\n",
     "already used by node 'a'", "nodes[1].ip"),
    ("node-ip-cidr", "name: x\nnodes: [{name: a, ip: 192.168.122.9/24}]\n", "is a CIDR; give the address alone",
     "nodes[0].ip"),
    ("node-ip-number", "name: x\nnodes: [{name: a, ip: 3232266761}]\n", "must be an IPv4 address written as a string",
     "nodes[0].ip"),
    ("pod-ip-malformed", BASE + "pods: [{name: p, node: a, ip: 10.244.0.300}]\n", "is not an IPv4 address",
     "pods[0].ip"),
    ("pod-ip-other-node", BASE + "pods: [{name: p, node: a, ip: 10.244.1.5}]\n",
     "is not in the pod CIDR of node 'a' (10.244.0.0/24); pick", "pods[0].ip"),
    ("pod-ip-network", BASE + "pods: [{name: p, node: a, ip: 10.244.0.0}]\n", "is reserved in 10.244.0.0/24",
     "pods[0].ip"),
    ("pod-ip-gateway", BASE + "pods: [{name: p, node: a, ip: 10.244.0.1}]\n", "is reserved", "pods[0].ip"),
    ("pod-ip-broadcast", BASE + "pods: [{name: p, node: a, ip: 10.244.0.255}]\n", "is reserved", "pods[0].ip"),
    ("pod-ip-duplicate", BASE + "pods: [{name: p, node: a, ip: 10.244.0.7}, {name: q, node: a, ip: 10.244.0.7}]\n",
     "already used by pod 'p'", "pods[1].ip"),
    ("cluster-ip-outside", BASE + "services: [{name: s, clusterIP: 10.0.0.5, ports: [{port: 80}]}]\n",
     "is not a host address of cluster.serviceCIDR", "services[0].clusterIP"),
    ("cluster-ip-duplicate", BASE + "services: [{name: s, clusterIP: 10.96.0.20, ports: [{port: 80}]}, "
                                    "{name: t, clusterIP: 10.96.0.20, ports: [{port: 80}]}]\n",
     "already used by service 's'", "services[1].clusterIP"),
    ("internet-host-outside", BASE + "internet: {hosts: [{name: h, ip: 198.51.100.7}]}\n",
     "is not a host address of internet.cidr", "internet.hosts[0].ip"),
    ("internet-gateway-outside", BASE + "internet: {gateway: {ip: 198.51.100.1}}\n",
     "is not a host address of internet.cidr", "internet.gateway.ip"),
    ("internet-host-is-gateway", BASE + "internet: {hosts: [{name: h, ip: 203.0.113.1}]}\n",
     "already used by the internet gateway", "internet.hosts[0].ip"),
    ("lb-ip-is-host", BASE + "internet: {hosts: [{name: h, ip: 203.0.113.10}]}\n"
                             "services: [{name: s, type: LoadBalancer, loadBalancerIP: 203.0.113.10, ports: [{port: 80}]}]\n",
     "already used by host 'h'", "services[0].loadBalancerIP"),
    # services
    ("nodeport-on-clusterip", BASE + "services: [{name: s, ports: [{port: 80, nodePort: 30080}]}]\n",
     "nodePort needs type NodePort or LoadBalancer", "services[0].ports[0].nodePort"),
    ("nodeport-duplicate", BASE + "services: [{name: s, type: NodePort, ports: [{port: 80, nodePort: 30080}]}, "
                                  "{name: t, type: NodePort, ports: [{port: 81, nodePort: 30080}]}]\n",
     "nodePort 30080 is already allocated to service default/s (services[0].ports[0])",
     "services[1].ports[0].nodePort"),
    ("nodeport-is-vxlan-port", BASE + "network: {vxlan: {port: 30472}}\n"
                                      "services: [{name: s, type: NodePort, ports: [{port: 80, protocol: UDP, "
                                      "nodePort: 30472}]}]\n",
     "is the VXLAN port", "services[0].ports[0].nodePort"),
    ("lb-without-internet", BASE + "services: [{name: s, type: LoadBalancer, ports: [{port: 80}]}]\n",
     "needs an internet: section", "services[0].type"),
    ("lb-ip-without-lb-type", BASE + "internet: {}\nservices: [{name: s, loadBalancerIP: 203.0.113.5, "
                                     "ports: [{port: 80}]}]\n",
     "loadBalancerIP needs type LoadBalancer", "services[0].loadBalancerIP"),
    ("service-no-ports", BASE + "services: [{name: s}]\n", "add ports:", "services[0].ports"),
    # numbers out of range
    ("port-zero", BASE + "pods: [{name: p, node: a, containers: [{name: c, ports: [{containerPort: 0}]}]}]\n",
     "ports must be 1-65535", "pods[0].containers[0].ports[0].containerPort"),
    ("port-too-big", BASE + "services: [{name: s, ports: [{port: 65536}]}]\n", "ports must be 1-65535",
     "services[0].ports[0].port"),
    ("target-port-negative", BASE + "services: [{name: s, ports: [{port: 80, targetPort: -1}]}]\n",
     "-1 is not a port; ports are 1-65535", "services[0].ports[0].targetPort"),
    ("expect-port-too-big", BASE + "expect: [{from: a, to: a, proto: tcp, port: 99999}]\n", "ports must be 1-65535",
     "expect[0].port"),
    ("nodeport-too-low", BASE + "services: [{name: s, type: NodePort, ports: [{port: 80, nodePort: 29999}]}]\n",
     "nodePorts must be 30000-32767", "services[0].ports[0].nodePort"),
    ("nodeport-too-high", BASE + "services: [{name: s, type: NodePort, ports: [{port: 80, nodePort: 32768}]}]\n",
     "nodePorts must be 30000-32767", "services[0].ports[0].nodePort"),
    # One range, the true one (QA fl59 8): a VNI of 24 bits over 9999999 names a device the kernel refuses
    ("vni-zero", BASE + "network: {vxlan: {vni: 0}}\n", "0 is too small (limit 1); " + VNI_WORDS, "network.vxlan.vni"),
    ("vni-too-big", BASE + "network: {vxlan: {vni: 16777216}}\n", "(limit 9999999); " + VNI_WORDS,
     "network.vxlan.vni"),
    ("vni-device-name", BASE + "network: {vxlan: {vni: 10000000}}\n", "10000000 is too large (limit 9999999); "
     + VNI_WORDS, "network.vxlan.vni"),
    ("vni-host-gw", BASE + "network: {mode: host-gw, vxlan: {vni: 16777215}}\n", "(limit 9999999); " + VNI_WORDS,
     "network.vxlan.vni"),  # the same range in every mode: a lab switched to vxlan makes the device
    ("vxlan-port-too-big", BASE + "network: {vxlan: {port: 70000}}\n", "ports must be 1-65535", "network.vxlan.port"),
    ("mtu-too-low", BASE + "network: {underlay: {mtu: 1279}}\n", "underlay MTUs must be 1280-9000",
     "network.underlay.mtu"),
    ("mtu-too-high", BASE + "network: {underlay: {mtu: 9001}}\n", "underlay MTUs must be 1280-9000",
     "network.underlay.mtu"),
    ("nodemask-too-small", "name: x\ncluster: {nodeMask: 15}\nnodes: [{name: a}]\n", "must be 16-28",
     "cluster.nodeMask"),
    ("nodemask-too-big", "name: x\ncluster: {nodeMask: 29}\nnodes: [{name: a}]\n", "must be 16-28",
     "cluster.nodeMask"),
    # capacity
    ("too-many-pods-node-cidr", "name: x\ncluster: {nodeMask: 28}\nnodes: [{name: a}]\npods: ["
     + ", ".join(f"{{name: p{i}, node: a}}" for i in range(14)) + "]\n",
     "14 pods on node 'a', but its pod CIDR 10.244.0.0/28 holds 13", "pods[13].node"),
    ("too-many-pods-bridge", "name: x\ncluster: {nodeMask: 21}\nnodes: [{name: a}]\npods: ["
     + ", ".join(f"{{name: p{i}, node: a}}" for i in range(1024)) + "]\n",
     "its cni0 bridge takes at most 1023 ports", "pods[1023].node"),
    ("no-podcidr-left", "name: x\ncluster: {podCIDR: 10.244.0.0/23}\nnodes: [{name: a}, {name: b}, {name: c}]\n",
     "has no free /24 left", "nodes[2]"),
    ("underlay-full", "name: x\nnetwork: {underlay: {cidr: 192.168.122.0/29}}\nnodes: ["
     + ", ".join(f"{{name: n{i}}}" for i in range(6)) + "]\n", "no free address left in the underlay", "nodes[5]"),
    ("service-cidr-full", "name: x\ncluster: {serviceCIDR: 10.96.0.0/28}\nnodes: [{name: a}]\nservices: ["
     + ", ".join(f"{{name: s{i}, ports: [{{port: 80}}]}}" for i in range(6)) + "]\n",
     "has no free address left", "services[5]"),
]


@pytest.mark.parametrize("text,expect,field", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(tmp_path, text, expect, field):
    problem = find(text, tmp_path, expect)
    if field is not None:
        assert problem.field == field, str(problem)
    assert problem.line is not None and problem.line >= 1, str(problem)
    assert problem.file == str(tmp_path / "t.yaml")


@pytest.mark.parametrize("text", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_every_problem_is_one_short_line(tmp_path, text):
    for problem in problems(text, tmp_path):
        line = str(problem)
        assert "\n" not in line and "\r" not in line, repr(line)
        assert len(problem.message) < 300, line
        assert problem.field and not any(ch.isspace() for ch in problem.field), repr(problem.field)


def test_problem_lines_point_at_the_culprit(tmp_path):
    text = "name: x\nnodes:\n  - name: a\n  - name: b\n    ip: 10.9.9.9\npods:\n  - name: p\n    node: c\n"
    by_field = {p.field: p.line for p in problems(text, tmp_path)}
    assert by_field == {"pods[0].node": 8}  # allocation waits until names are sane
    text = text.replace("node: c", "node: a")
    assert {p.field: p.line for p in problems(text, tmp_path)} == {"nodes[1].ip": 5}


def test_all_problems_are_reported_at_once_in_line_order(tmp_path):
    text = ("name: x\n"
            "nodes:\n"
            "  - {name: a, colour: red}\n"      # unknown key
            "  - {name: B}\n"                   # not a DNS label
            "network: {underlay: {mtu: 100}}\n"  # out of range
            "pods: [{name: p, node: a, containers: [{name: c, ports: [{containerPort: 010}]}]}]\n")  # octal
    found = problems(text, tmp_path)
    assert [(p.line, p.field) for p in found] == [
        (3, "nodes[0].colour"), (4, "nodes[1].name"), (5, "network.underlay.mtu"),
        (6, "pods[0].containers[0].ports[0].containerPort")]


def test_cross_field_problems_are_reported_at_once(tmp_path):
    text = BASE + ("pods: [{name: p, node: zz}, {name: p, node: a}]\n"
                   "services: [{name: s, type: LoadBalancer, ports: [{port: 80}]}]\n"
                   "expect: [{from: ghost, to: a}]\n")
    fields = {p.field for p in problems(text, tmp_path)}
    assert {"pods[0].node", "pods[1].name", "services[0].type", "expect[0].from"} <= fields


def test_reader_problem_is_not_reported_twice(tmp_path):
    found = problems(BASE + "services: [{name: s, ports: [{port: 0x50}]}]\n", tmp_path)
    assert [p.field for p in found] == ["services[0].ports[0].port"]
    assert "hex" in found[0].message


def test_duplicate_key_keeps_reading(tmp_path):
    found = problems("name: x\nname: y\nnodes: [{name: A}]\n", tmp_path)
    assert [(p.line, p.field) for p in found] == [(2, "name"), (3, "nodes[0].name")]


@pytest.mark.parametrize("text", [
    BASE + "pods: [{name: p, node: a, ip: 10.244.0.254}]\n",
    "name: " + "l" * 24 + "\nnodes: [{name: " + "n" * 38 + "}]\n",  # namespace name exactly 63
    BASE + "network: {vxlan: {vni: 9999999, port: 1}, underlay: {mtu: 1280}}\n",
    BASE + "network: {vxlan: {vni: 9999999}, mode: host-gw, underlay: {mtu: 9000}}\n",
    "name: x\ncluster: {nodeMask: 16}\nnodes: [{name: a}]\n",
    "name: x\ncluster: {podCIDR: 10.244.0.0/20, nodeMask: 28}\nnodes: [{name: a}]\n",
    BASE + "services: [{name: s, type: NodePort, ports: [{name: a, port: 65535, nodePort: 30000}, "
           "{name: b, port: 1, nodePort: 32767}]}]\n",
    BASE + "services: [{name: s, type: NodePort, ports: [{name: t, port: 80, nodePort: 30080, protocol: TCP}, "
           "{name: u, port: 80, nodePort: 30080, protocol: UDP}]}]\n",
    BASE + "pods: [{name: p, node: a, labels: {app.kubernetes.io: 'x_y-z.1', empty: ''}}]\n",
    # Kubernetes' recommended labels: a prefix, then the name (at most 63)
    BASE + "pods: [{name: p, node: a, labels: {app.kubernetes.io/name: web, " + "k" * 63 + ": v}}]\n"
           "services: [{name: s, selector: {app.kubernetes.io/name: web}, ports: [{port: 80}]}]\n",
    BASE + "pods: [{name: p, node: a, containers: [{name: c, command: ['sh', '-c', 'echo \"$x\" % 1']}]}]\n",
    BASE + "internet: {hosts: [{name: h, ip: 203.0.113.254}]}\n"
           "services: [{name: s, type: LoadBalancer, loadBalancerIP: 203.0.113.100, ports: [{port: 80}]}]\n",
    "name: 2001-01-01\nnodes: [{name: a}]\n",  # a YAML 1.1 timestamp, kept as text: a valid DNS label
    "name: x\nnodes: [{name: a, ip: 192.168.122.254}]\n",
    "name: '010'\nnodes: [{name: '0x1f'}]\n",  # quoted: strings, not numbers
    "name: ! x\nnodes: [{name: a}]\n",  # the non-specific tag '!' means "a string"
], ids=["pod-ip-last", "netns-63", "vxlan-limits", "host-gw-big-vni", "nodemask-16", "nodemask-28", "port-limits",
        "nodeport-tcp-and-udp", "labels", "prefixed-labels", "command-text", "internet", "timestamp-name",
        "node-ip-last",
        "quoted-numbers", "non-specific-tag"])
def test_boundary_values_are_valid(tmp_path, text):
    valid(text, tmp_path)


def test_lab_name_at_limit_is_valid(tmp_path):
    valid("name: " + "l" * 24 + "\nnodes: [{name: a}]\n", tmp_path)


def test_pods_at_node_cidr_capacity_are_valid(tmp_path):
    pods = ", ".join(f"{{name: p{i}, node: a}}" for i in range(13))
    valid(f"name: x\ncluster: {{nodeMask: 28}}\nnodes: [{{name: a}}]\npods: [{pods}]\n", tmp_path)


def test_the_default_topology_is_valid():
    assert check_topology(load_topology(None)) == []


def test_python_names_work_in_code_but_not_in_yaml(tmp_path):
    assert str(Node(name="a", pod_cidr="10.244.0.0/24").pod_cidr) == "10.244.0.0/24"
    assert str(Node.model_validate({"name": "a", "podCIDR": "10.244.0.0/24"}).pod_cidr) == "10.244.0.0/24"
    find("name: x\nnodes: [{name: a, pod_cidr: 10.244.0.0/24}]\n", tmp_path, "unknown field 'pod_cidr'")


def test_models_are_frozen():
    topo = load_topology(None)
    with pytest.raises(Exception):
        topo.name = "other"  # type: ignore[misc]


def test_veth_name_collisions_are_caught(monkeypatch):
    topo = Topology.model_validate({"name": "x", "nodes": [{"name": "a"}],
                                    "pods": [{"name": "p", "node": "a"}, {"name": "q", "node": "a"}]})
    assert check_topology(topo) == []
    monkeypatch.setattr(naming, "short_hash", lambda *parts, length=8: "0" * length)
    found = check_topology(topo)
    assert (("nodes", 0, "name") not in [loc for loc, _ in found])
    assert [loc for loc, msg in found if "collides" in msg] == [("pods", 0, "name"), ("pods", 1, "name")]


def test_problem_count_is_capped(tmp_path):
    pods = ", ".join(f"{{name: P{i}, node: a}}" for i in range(300))
    found = problems(f"{BASE}pods: [{pods}]\n", tmp_path)
    assert len(found) == 101
    assert found[-1].message == "... and 200 more problems; fix these first"


def test_a_manifest_pasted_inline_is_one_problem_that_says_both_forms(tmp_path):
    """A NetworkPolicy or Namespace manifest written inline was four problems (apiVersion, kind, metadata unknown;
    name missing); it is one, at the entry, naming the inline form and include:. Its spec is still checked."""
    text = BASE + """namespaces:
  - {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
  - {name: ok, labels: {a: b}}
networkPolicies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: deny}
    spec: {podSelector: {}, policyTypes: [Ingres]}
  - {name: inline, kind: x}
"""
    found = [(p.line, p.field, p.message) for p in problems(text, tmp_path)]
    assert found == [
        (4, "namespaces[0]", "a Kubernetes manifest (apiVersion:, kind:, metadata:) here; inline, write name: and "
                             "labels: (metadata's), or put the manifest in a file as it is and list that file under "
                             "include:"),
        (7, "networkPolicies[0]", "a Kubernetes manifest (apiVersion:, kind:, metadata:) here; inline, write name:, "
                                  "namespace: (metadata's) and spec: (as it is), or put the manifest in a file as it "
                                  "is and list that file under include:"),
        (10, "networkPolicies[0].spec.policyTypes[0]", "'Ingres' is not allowed; use 'Ingress' or 'Egress'"),
        (11, "networkPolicies[1].kind", "unknown field 'kind' (networkPolicies[1] takes: name, namespace, spec)"),
    ]  # no spec is the API server's zero spec (test_netpol_no_spec.py), no problem


def test_a_saved_topology_of_24_bits_still_loads():
    """The field takes a VNI's 24 bits: a state an older netlab saved for a host-gw lab with a VNI over 9999999 (it
    refused those in vxlan mode alone) still loads, not a corrupt state; its topology file is refused as any."""
    from netlab.model.checks import check_topology
    from netlab.model.load import parse_yaml
    from netlab.model.topology import Topology

    topo = Topology.model_validate(parse_yaml(BASE + "network: {mode: host-gw, vxlan: {vni: 16777215}}\n",
                                              "t.yaml").data)
    assert [msg for _, msg in check_topology(topo)] == [f"16777215 is too large (limit 9999999); {VNI_WORDS}"]
