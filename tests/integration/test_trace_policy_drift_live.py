"""trace when a node's policy rules are not the policies' (root, one real lab for the module, repaired with
`netlab up` after each case): its text, JSON and exit code against real connections and the kernel's REJECT
counters (iptables-save -c).

a-web (n1) takes TCP 8080 only from namespace b (b-cli, on n1 too); a-cli (namespace a, n1) is denied by a's
default deny. trace said "dropped ... but the kernel's REJECT rule there counted nothing" and exited 0 for a
denied flow a flushed chain let through, and "LOST ... look at the firewall" with the REJECT's reset shown as
a-web's reply for an allowed flow whose allow rule was deleted.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest

from helpers import in_netns, ip_json, lab_up, netlab, reject_counts, unique_lab
from netlab.errors import netlab_command

pytestmark = pytest.mark.root

PORT = 8080


def _topology(lab: str) -> str:
    return f"""name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
namespaces: [{{name: a}}, {{name: b}}]
pods:
  - name: a-web
    namespace: a
    node: n1
    labels: {{app: web}}
    containers: [{{name: web, ports: [{{containerPort: {PORT}, protocol: TCP, name: http}}]}}]
  - {{name: a-cli, namespace: a, node: n1}}
  - {{name: b-cli, namespace: b, node: n1}}
networkPolicies:
  - {{name: default-deny, namespace: a, spec: {{podSelector: {{}}, policyTypes: [Ingress]}}}}
  - name: allow-web-from-b
    namespace: a
    spec:
      podSelector: {{matchLabels: {{app: web}}}}
      ingress: [{{from: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: b}}}}}}],
                  ports: [{{port: http}}]}}]
"""


def _lab_up(tmp_path_factory, prefix: str):
    """A module's lab of _topology (named ``prefix`` + hex), up while the generator is, then down."""
    name = unique_lab(prefix)
    path = tmp_path_factory.mktemp(name) / "topo.yaml"
    path.write_text(_topology(name))
    with lab_up(str(path), name):
        yield name


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from _lab_up(tmp_path_factory, "tpd")


@pytest.fixture
def repaired(lab):
    """The lab as planned before and after the case."""
    yield lab
    netlab("up", "--lab", lab)
    assert netlab("status", "--lab", lab, check=False).returncode == 0


def _ip(lab: str, pod: str) -> str:
    return ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-{pod}")[0]["addr_info"][0]["local"]


def _rules(netns: str) -> list[str]:
    """The filter table's rules as iptables-save prints them, without their counters."""
    out = in_netns(netns, "iptables-save", "-t", "filter", check=True).stdout
    return [line for line in out.splitlines() if line.startswith("-A ")]


def _web_chain(lab: str) -> str:
    """a-web's ingress chain, as n1's NETPOL-FORWARD jumps to it."""
    web = _ip(lab, "a-web")
    return next(line.split()[-1] for line in _rules(f"{lab}-n1")
                if line.startswith(f"-A NETPOL-FORWARD -d {web}/32 "))


def _connect(netns: str, ip: str) -> str:
    code = ("import socket,sys\ns=socket.socket(); s.settimeout(3)\n"
            "try:\n s.connect((sys.argv[1], int(sys.argv[2]))); print('ok')\n"
            "except ConnectionRefusedError: print('refused')\nexcept OSError as e: print(type(e).__name__)\n")
    return in_netns(netns, "python3", "-c", code, ip, str(PORT), check=True).stdout.strip()


def _trace(lab: str, src: str, *extra: str):
    proc = netlab("trace", "--lab", lab, src, "a-web", "--proto", "tcp", "--port", str(PORT), *extra, check=False,
                  timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    return proc


def test_a_denied_flow_an_emptied_chain_let_through_is_not_stopped_names_the_rules_and_fails(repaired):
    lab, n1 = repaired, f"{repaired}-n1"
    chain = _web_chain(lab)
    flushed = [line for line in _rules(n1) if line.startswith(f"-A {chain} ")]
    assert any("-j REJECT" in line for line in flushed)
    in_netns(n1, "iptables", "-F", chain, check=True)
    before = reject_counts(n1)
    assert _connect(f"{lab}-a-cli", _ip(lab, "a-web")) == "ok"  # the kernel let the denied flow through
    proc = _trace(lab, "a-cli", "-o", "json")
    d = json.loads(proc.stdout)
    assert reject_counts(n1) == before  # no REJECT counted the connection nor the trace's packet
    assert proc.returncode == 1 and d["delivered"] and d["reply_received"] and d["lost"] is None, proc.stdout
    [e] = d["policy"]
    assert (e["allowed"], e["counted"], e["stopped"], e["node"], e["chain"]) == (False, False, False, "n1", chain), e
    assert e["missing"] == flushed and e["extra"] == [] and e["fix"] == d["repair"], e
    assert e["text"].startswith("denied by policies a/default-deny, a/allow-web-from-b (no ingress rule allows it "
                                f"for pod a/a-web), but NOT STOPPED: {len(flushed)} of netlab's rules are missing "
                                f"from node n1's chain {chain} (its REJECT among them: -A {chain} "), e["text"]
    # status names the same rules
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and all(f"missing rule: {line}" in status.stdout for line in flushed)
    text = _trace(lab, "a-cli")
    assert text.returncode == 1, text.stdout
    assert re.search(r"result: delivered to a-web .*connection established", text.stdout), text.stdout
    assert f"policy: {e['text']}\n  fix: {d['repair']}\n" in text.stdout, text.stdout


def test_bridge_nf_call_off_lets_a_denied_flow_through_and_trace_fails(repaired):
    lab, n1 = repaired, f"{repaired}-n1"
    in_netns(n1, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0", check=True)
    before = reject_counts(n1)
    proc = _trace(lab, "a-cli", "-o", "json")
    d = json.loads(proc.stdout)
    assert reject_counts(n1) == before
    [e] = d["policy"]
    assert proc.returncode == 1 and d["delivered"] and e["stopped"] is False, proc.stdout
    assert "but NOT STOPPED: net.bridge.bridge-nf-call-iptables = 0" in e["text"], e


def test_an_allowed_flow_refused_for_a_missing_allow_rule_names_it_and_the_reset_is_the_nodes(repaired):
    lab, n1 = repaired, f"{repaired}-n1"
    chain, cli = _web_chain(lab), _ip(lab, "b-cli")
    [allow] = [line for line in _rules(n1) if line.startswith("-A NETPOL-ING-") and f"-s {cli}/32 " in line]
    in_netns(n1, "iptables", "-D", *shlex.split(allow)[1:], check=True)
    before = reject_counts(n1)
    assert _connect(f"{lab}-b-cli", _ip(lab, "a-web")) == "refused"  # the REJECT's reset
    assert reject_counts(n1)[chain] == before[chain] + 1
    proc = _trace(lab, "b-cli", "-o", "json")
    d = json.loads(proc.stdout)
    assert reject_counts(n1)[chain] == before[chain] + 2  # and the trace's SYN: the same REJECT counted it
    assert proc.returncode == 1 and not d["delivered"] and d["reply_received"], proc.stdout
    [e] = d["policy"]
    assert (e["allowed"], e["counted"], e["node"], e["chain"], e["missing"]) == (True, True, "n1", chain, [allow]), e
    assert e["text"].startswith("allowed by policy a/allow-web-from-b, ingress rule 1, peer 1 namespaceSelector "
                                f"kubernetes.io/metadata.name=b, port http/TCP, but REFUSED in node n1: the kernel's "
                                f"REJECT in chain {chain} counted it; the rule that allows it is missing from node "
                                f"n1's filter table: {allow}"), e["text"]
    # Lost at the REJECT's own row in n1; the reset is n1's answer, and a-web never saw the request nor answered.
    lost = d["lost"]
    row = d["hops"][lost["hop"] - 1]
    assert (row["kind"], row["netns"], row["facts"]["chain"]) == ("drop", n1, chain), row
    assert (lost["reason"], lost["fix"]) == (e["text"], d["repair"]), lost
    first = d["reply_hops"][0]
    assert (first["kind"], first["netns"], first["facts"]["reject_hop"]) == ("reject", n1, lost["hop"]), first
    assert not any(h["netns"] == f"{lab}-a-web" for h in d["reply_hops"]), d["reply_hops"]
    assert not any(h["netns"] == f"{lab}-a-web" and h["seen"] for h in d["hops"]), d["hops"]
    text = _trace(lab, "b-cli").stdout
    assert re.search(rf"result: REFUSED at hop {lost['hop']} \({n1} \S+\): allowed by policy a/allow-web-from-b", text)
    assert "; the REJECT answered it at once with a TCP reset in pod a/a-web's name: the client is refused" in text
    assert f"the rule that allows it is missing from node n1's filter table: {allow}" in text, text
    assert f"the REJECT at hop {lost['hop']} answers the request with a TCP reset" in text, text
    # policy table: the mismatch says what the probe saw (not a bare outcome word), and a hint names status, the
    # trace of the flow and the repair (QA polfix 4)
    table = netlab("policy", "table", "--lab", lab, check=False, timeout=120)
    assert table.returncode == 1, table.stdout + table.stderr
    assert f"MISMATCH b-cli -> a-web tcp/{PORT}: allowed but BLOCKED (allowed by policy a/allow-web-from-b" in \
        table.stdout and "); connection refused: tcp port 8080 has a socket" in table.stdout, table.stdout
    [hint] = [line for line in table.stdout.splitlines() if line.startswith("hint: ")]
    assert hint.startswith(f"hint: the nodes' policy rules are not as planned (drift: different: iptables filter "
                           f"rules in {n1} (missing rule: {allow})), which explains a flow allowed but blocked: "
                           f"`{netlab_command(f'status --lab {lab}')}` lists what differs, "
                           f"`{netlab_command(f'trace --lab {lab} b-cli a-web --proto tcp --port {PORT}')}` names the "
                           f"rule the flow met; {netlab_command('up')} "), hint
    assert hint.endswith(" writes them back"), hint
    # Repaired, the flow connects and the trace says so.
    netlab("up", "--lab", lab)
    proc = _trace(lab, "b-cli", "-o", "json")
    d = json.loads(proc.stdout)
    assert proc.returncode == 0 and d["delivered"] and d["policy"][0]["text"].startswith("allowed by policy"), d
    assert "counted" not in d["policy"][0]
