"""The upstream netpol e2e model (namespaces x, y, z × pods a, b, c; ports 80 and 81,
TCP and UDP) on two nodes, and policy cases from the e2e suite and cyclonus, each
with a truth table written by hand.

A table has one row per source and one column per destination, in the order
x/a x/b x/c y/a y/b y/c z/a z/b z/c: ``.`` allowed, ``X`` denied. A case gives one
table for all four (protocol, port) pairs, or a table per pair (``"tcp/80"``...).
The diagonal is a pod reaching its own address (loopback): always ``.``.

Placement: pods a and c on n1, b on n2, so every case has same-node (bridged)
and cross-node (routed over VXLAN) flows. Addresses are fixed so that ipBlock
cases can be written by hand: x/a 10.244.0.11, x/b 10.244.1.12, x/c 10.244.0.13,
y/* .21-.23, z/* .31-.33 (n1 holds 10.244.0.0/24, n2 10.244.1.0/24).
"""

from __future__ import annotations

import yaml

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
FLOWS = (("TCP", 80), ("TCP", 81), ("UDP", 80), ("UDP", 81))
ORDER = tuple(f"{ns}/{p}" for ns in NAMESPACES for p in PODS)


def pod_name(ns: str, pod: str) -> str:
    return f"{ns}-{pod}"  # pod names are unique lab-wide


def pod_ip(ns: str, pod: str) -> str:
    node = 1 if pod == "b" else 0
    return f"10.244.{node}.{(NAMESPACES.index(ns) + 1) * 10 + PODS.index(pod) + 1}"


def model(name: str, policies: list[dict] | None = None, services: list[dict] | None = None) -> dict:
    """The 3×3 model as a topology dict (the YAML's field names)."""
    ports = [{"containerPort": port, "protocol": proto, "name": f"serve-{port}-{proto.lower()}"}
             for proto, port in FLOWS]
    return {
        "name": name,
        "nodes": [{"name": "n1"}, {"name": "n2"}],
        "namespaces": [{"name": ns, "labels": {"ns": ns}} for ns in NAMESPACES],
        "pods": [{"name": pod_name(ns, p), "namespace": ns, "node": "n2" if p == "b" else "n1",
                  "ip": pod_ip(ns, p), "labels": {"pod": p},
                  "containers": [{"name": "cont", "ports": ports}]}
                 for ns in NAMESPACES for p in PODS],
        "networkPolicies": policies or [],
        **({"services": services} if services else {}),
    }


def parse_table(text: str) -> dict[tuple[str, str], bool]:
    rows = [line.split() for line in text.strip().splitlines() if line.strip()]
    assert rows[0] == list(ORDER), f"header must be {ORDER}"
    out = {}
    for row in rows[1:]:
        src, marks = row[0], row[1:]
        assert src in ORDER and len(marks) == 9, row
        for dst, mark in zip(ORDER, marks):
            assert mark in ".X", mark
            out[(src, dst)] = mark == "."
    assert len(out) == 81
    return out


def expected(case: dict) -> dict[tuple[str, str, str, int], bool]:
    """(src, dst, PROTOCOL, port) -> allowed, from a case's hand-written tables."""
    out = {}
    for proto, port in FLOWS:
        text = case["tables"].get(f"{proto.lower()}/{port}", case["tables"].get("all"))
        for (src, dst), ok in parse_table(text).items():
            out[(src, dst, proto, port)] = ok
    return out


def pol(text: str) -> list[dict]:
    return list(yaml.safe_load_all(text))


H = "     x/a x/b x/c y/a y/b y/c z/a z/b z/c\n"
ALL = H + "\n".join(f"{s}  .   .   .   .   .   .   .   .   ." for s in ORDER)
DENY_TO_X = H + """
x/a   .   X   X   .   .   .   .   .   .
x/b   X   .   X   .   .   .   .   .   .
x/c   X   X   .   .   .   .   .   .   .
y/a   X   X   X   .   .   .   .   .   .
y/b   X   X   X   .   .   .   .   .   .
y/c   X   X   X   .   .   .   .   .   .
z/a   X   X   X   .   .   .   .   .   .
z/b   X   X   X   .   .   .   .   .   .
z/c   X   X   X   .   .   .   .   .   .
"""
DENY_FROM_X = H + """
x/a   .   X   X   X   X   X   X   X   X
x/b   X   .   X   X   X   X   X   X   X
x/c   X   X   .   X   X   X   X   X   X
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   .   .   .   .   .   .   .   .   .
z/b   .   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .
"""
DENY_X_BOTH = H + """
x/a   .   X   X   X   X   X   X   X   X
x/b   X   .   X   X   X   X   X   X   X
x/c   X   X   .   X   X   X   X   X   X
y/a   X   X   X   .   .   .   .   .   .
y/b   X   X   X   .   .   .   .   .   .
y/c   X   X   X   .   .   .   .   .   .
z/a   X   X   X   .   .   .   .   .   .
z/b   X   X   X   .   .   .   .   .   .
z/c   X   X   X   .   .   .   .   .   .
"""


# x/a reaches every pod but those of n2 (10.244.1.0/24), and nothing else changes.
XA_NOT_TO_N2 = H + """
x/a   .   X   .   .   X   .   .   X   .
x/b   .   .   .   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   .   .   .   .   .   .   .   .   .
z/b   .   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .
"""


def only_to_xa(sources: str) -> str:
    """Everything allowed except into x/a, which only ``sources`` (space separated) and x/a itself reach."""
    allowed = set(sources.split()) | {"x/a"}
    lines = [H.rstrip()]
    for s in ORDER:
        marks = ["." if d != "x/a" or s in allowed else "X" for d in ORDER]
        lines.append(f"{s}  " + "   ".join(marks))
    return "\n".join(lines)


def case(name: str, policies: str, **tables: str) -> dict:
    return {"name": name, "policies": pol(policies), "tables": {k.replace("_", "/"): v for k, v in tables.items()}}


DENY_INGRESS_X = """
name: deny-all-ingress
namespace: x
spec: {podSelector: {}, policyTypes: [Ingress]}
"""

CASES = [
    case("default-deny-ingress", DENY_INGRESS_X, all=DENY_TO_X),
    case("default-deny-egress", """
name: deny-all-egress
namespace: x
spec: {podSelector: {}, policyTypes: [Egress]}
""", all=DENY_FROM_X),
    case("default-deny-both", """
name: deny-all
namespace: x
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
""", all=DENY_X_BOTH),
    case("ingress-empty-list-denies", """
name: no-ingress-rules
namespace: x
spec: {podSelector: {}, ingress: []}
""", all=DENY_TO_X),
    case("allow-all-ingress-rule", """
name: allow-all
namespace: x
spec: {podSelector: {}, ingress: [{}]}
""", all=ALL),
    case("egress-only-to-dns", """
name: allow-dns-only
namespace: x
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
""", all=DENY_FROM_X),
    case("allow-from-namespace", """
name: allow-from-y
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
""", all=only_to_xa("y/a y/b y/c")),
    case("pods-in-namespace-AND", """
name: allow-yb
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}]
""", all=only_to_xa("y/b")),
    case("pods-or-namespace-OR", """
name: allow-y-or-b
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: y}}}, {podSelector: {matchLabels: {pod: b}}}]
""", all=only_to_xa("y/a y/b y/c x/b")),
    case("namespace-matchExpressions-NotIn", """
name: not-from-x
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}}]
""", all=only_to_xa("y/a y/b y/c z/a z/b z/c")),
    case("pod-matchExpressions-In", """
name: from-b-or-c
namespace: x
spec:
  podSelector: {matchExpressions: [{key: pod, operator: In, values: [a]}]}
  ingress:
    - from: [{podSelector: {matchExpressions: [{key: pod, operator: In, values: [b, c]}]}}]
""", all=only_to_xa("x/b x/c")),
    case("matchExpressions-Exists-DoesNotExist", """
name: exists
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from:
        - namespaceSelector: {matchExpressions: [{key: ns, operator: Exists}]}
          podSelector: {matchExpressions: [{key: pod, operator: In, values: [c]}, {key: app, operator: DoesNotExist}]}
""", all=only_to_xa("x/c y/c z/c")),
    case("namespaceSelector-by-name-label", """
name: from-z
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}}]}]
""", all=only_to_xa("z/a z/b z/c")),
    case("all-namespaces-pod-a", """
name: from-any-a
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}]}]
""", all=only_to_xa("y/a z/a")),
    case("empty-podSelector-peer-is-own-namespace", """
name: from-own-ns
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {}}]}]
""", all=only_to_xa("x/b x/c")),
    case("ipBlock-except-ingress", """
name: from-n1-block
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.1.0/24, 10.244.0.21/32]}}]}]
""", all=only_to_xa("x/c y/c z/a z/c")),
    case("ipBlock-except-egress", """
name: to-n1-only
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.1.0/24]}}]}]
""", all=XA_NOT_TO_N2),
    case("ipBlock-everything-but-egress", """
name: to-all-but-n2
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.244.1.0/24]}}]}]  # /0: no address match at all
""", all=XA_NOT_TO_N2),
    # An IPv6 block is valid (the API server takes it in any cluster) and holds no address of the IPv4 lab: a rule
    # whose only peer it is allows nothing, and the policy isolates its pods all the same. ::/0 above all: written
    # as 0.0.0.0/0 is (no address match), it would allow everything.
    case("ipBlock-ipv6-only-ingress", """
name: from-ipv6-only
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{ipBlock: {cidr: "::/0"}}]}]
""", all=only_to_xa("")),
    case("ipBlock-ipv6-only-egress", """
name: to-ipv6-only
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: "2001:db8::/32", except: ["2001:db8:1::/48"]}}]}]
""", all=H + """
x/a   .   X   X   X   X   X   X   X   X
x/b   .   .   .   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   .   .   .   .   .   .   .   .   .
z/b   .   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .
"""),
    case("named-port-tcp", """
name: serve-81-tcp-only
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: serve-81-tcp}]}]
""", tcp_80=only_to_xa(""), tcp_81=ALL, udp_80=only_to_xa(""), udp_81=only_to_xa("")),
    case("named-port-udp", """
name: serve-80-udp-only
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: serve-80-udp, protocol: UDP}]}]
""", tcp_80=only_to_xa(""), tcp_81=only_to_xa(""), udp_80=ALL, udp_81=only_to_xa("")),
    case("named-port-wrong-protocol-matches-nothing", """
name: serve-80-udp-as-tcp
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: serve-80-udp, protocol: TCP}]}]
""", all=only_to_xa("")),
    case("endPort-range", """
name: range-80-81
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 80, endPort: 81, protocol: TCP}]}]
""", tcp_80=ALL, tcp_81=ALL, udp_80=only_to_xa(""), udp_81=only_to_xa("")),
    case("endPort-range-above", """
name: range-81-90
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 81, endPort: 90, protocol: UDP}]}]
""", tcp_80=only_to_xa(""), tcp_81=only_to_xa(""), udp_80=only_to_xa(""), udp_81=ALL),
    case("protocol-without-port", """
name: any-udp
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{protocol: UDP}]}]
""", tcp_80=only_to_xa(""), tcp_81=only_to_xa(""), udp_80=ALL, udp_81=ALL),
    case("multiple-policies-union", """
name: from-y
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
---
name: from-zb
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: z}}, podSelector: {matchLabels: {pod: b}}}]}]
""", all=only_to_xa("y/a y/b y/c z/b")),
    case("deny-all-plus-allow-all-union", DENY_INGRESS_X + """---
name: allow-all-ingress
namespace: x
spec: {podSelector: {}, ingress: [{}]}
""", all=ALL),
    case("both-policy-types", """
name: a-both
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress, Egress]
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
  egress: [{to: [{podSelector: {matchLabels: {pod: c}}}]}]
""", all=H + """
x/a   .   X   .   X   X   X   X   X   X
x/b   .   .   .   .   .   .   .   .   .
x/c   X   .   .   .   .   .   .   .   .
y/a   X   .   .   .   .   .   .   .   .
y/b   X   .   .   .   .   .   .   .   .
y/c   X   .   .   .   .   .   .   .   .
z/a   X   .   .   .   .   .   .   .   .
z/b   X   .   .   .   .   .   .   .   .
z/c   X   .   .   .   .   .   .   .   .
"""),
    case("egress-types-default-with-egress-rules", """
name: implied-types
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  egress: [{to: [{namespaceSelector: {matchLabels: {ns: x}}}]}]
""", all=H + """
x/a   .   .   .   X   X   X   X   X   X
x/b   X   .   .   .   .   .   .   .   .
x/c   X   .   .   .   .   .   .   .   .
y/a   X   .   .   .   .   .   .   .   .
y/b   X   .   .   .   .   .   .   .   .
y/c   X   .   .   .   .   .   .   .   .
z/a   X   .   .   .   .   .   .   .   .
z/b   X   .   .   .   .   .   .   .   .
z/c   X   .   .   .   .   .   .   .   .
"""),
    case("egress-only-type-ignores-ingress-rules", """
name: egress-only
namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
""", all=H + """
x/a   .   X   X   X   X   X   X   X   X
x/b   .   .   .   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   .   .   .   .   .   .   .   .   .
z/b   .   .   .   .   .   .   .   .   .
z/c   .   .   .   .   .   .   .   .   .
"""),
    case("policy-selecting-no-pods", """
name: selects-nothing
namespace: x
spec: {podSelector: {matchLabels: {pod: nobody}}, policyTypes: [Ingress, Egress]}
""", all=ALL),
    case("egress-to-namespace-and-port", """
name: to-y-80
namespace: z
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: 80, protocol: TCP}]}]
""", tcp_80=H + """
x/a   .   .   .   .   .   .   .   .   .
x/b   .   .   .   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   X   X   X   .   .   .   .   X   X
z/b   X   X   X   .   .   .   X   .   X
z/c   X   X   X   .   .   .   X   X   .
""", tcp_81=(Z_81 := H + """
x/a   .   .   .   .   .   .   .   .   .
x/b   .   .   .   .   .   .   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   .   .   .   .   .   .   .   .   .
y/b   .   .   .   .   .   .   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   X   X   X   X   X   X   .   X   X
z/b   X   X   X   X   X   X   X   .   X
z/c   X   X   X   X   X   X   X   X   .
"""), udp_80=Z_81, udp_81=Z_81),
    case("ingress-from-pods-in-other-namespace-with-ports", """
name: y-from-x-81
namespace: y
spec:
  podSelector: {matchLabels: {pod: c}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchExpressions: [{key: pod, operator: NotIn, values: [b]}]}}]
      ports: [{port: 81}]
""", tcp_81=H + """
x/a   .   .   .   .   .   .   .   .   .
x/b   .   .   .   .   .   X   .   .   .
x/c   .   .   .   .   .   .   .   .   .
y/a   .   .   .   .   .   X   .   .   .
y/b   .   .   .   .   .   X   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   .   .   .   .   .   X   .   .   .
z/b   .   .   .   .   .   X   .   .   .
z/c   .   .   .   .   .   X   .   .   .
""", tcp_80=(YC_80 := H + """
x/a   .   .   .   .   .   X   .   .   .
x/b   .   .   .   .   .   X   .   .   .
x/c   .   .   .   .   .   X   .   .   .
y/a   .   .   .   .   .   X   .   .   .
y/b   .   .   .   .   .   X   .   .   .
y/c   .   .   .   .   .   .   .   .   .
z/a   .   .   .   .   .   X   .   .   .
z/b   .   .   .   .   .   X   .   .   .
z/c   .   .   .   .   .   X   .   .   .
"""), udp_80=YC_80, udp_81=YC_80),
]

# Cases whose tables are given only for some (protocol, port) pairs: the others equal "all".
for _c in CASES:
    if "all" not in _c["tables"]:
        for _proto, _port in FLOWS:
            _c["tables"].setdefault(f"{_proto.lower()}/{_port}", ALL)
