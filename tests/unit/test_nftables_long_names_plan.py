"""kube-proxy's nftables mode with the longest names Kubernetes allows (no root): a namespace and a Service name of
63 characters and a port name of 15 make an element comment ``<ns>/<svc>:<port>`` of 143 characters, which nft
refuses ("comment too long, 128 characters maximum allowed") and with it every node's whole table. kube-proxy cuts
the comment to 128 bytes (knftables.CommentLengthMax, kubernetes#139515); chain and set names stay whole, under
nf_tables' 255 characters, and hashAndTruncate cuts one past 240 with "...".
tests/integration/test_nftables_long_names.py brings such a lab up on a real kernel."""

from __future__ import annotations

import re

import pytest

from netlab.kernel.fake import FakeKernel
from netlab.kernel.fake_iptables import FakeError, nft_refusal
from netlab.lab import status as lab_status
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.plan import nftables
from netlab.plan.build import build_plan
from netlab.realize import nftables as realize
from netlab.realize import state as state_mod, state_dir

NS = "n" + "s" * 61 + "1"  # 63 characters, the most a namespace (a DNS label) may have
SVC = "s" + "v" * 61 + "c"  # 63, the most a Service name (a DNS-1035 label) may have
PORT = "abcdefghijklmno"  # 15, the most a port name (IANA_SVC_NAME) may have
NAME = f"{NS}/{SVC}:{PORT}"  # kube-proxy's ServicePortName.String(): 143 characters
TOPOLOGY = f"""name: {{lab}}
cluster: {{{{kubeProxyMode: nftables}}}}
nodes: [{{{{name: n1}}}}, {{{{name: n2}}}}]
namespaces: [{{{{name: {NS}}}}}]
pods:
  - {{{{name: web, node: n1, namespace: {NS}, labels: {{{{app: web}}}}}}}}
  - {{{{name: client, node: n2, namespace: {NS}}}}}
services:
  - name: {SVC}
    namespace: {NS}
    selector: {{{{app: web}}}}
    type: NodePort
    externalTrafficPolicy: Local
    clusterIP: 10.96.0.40
    ports: [{{{{name: {PORT}, port: 80, targetPort: 8080, nodePort: 30090}}}}]
  - name: {SVC[:-1]}e
    namespace: {NS}
    selector: {{{{app: nothing}}}}
    type: NodePort
    clusterIP: 10.96.0.41
    ports: [{{{{name: {PORT}, port: 80, nodePort: 30091}}}}]
"""


def _lab(name: str = "nclong"):
    return resolve(validate_source(parse_yaml(TOPOLOGY.format(lab=name), "t.yaml")))


def _tables(lab):
    return {r.netns: r for r in build_plan(lab).of_kind("nft")}


def test_every_comment_fits_in_128_bytes_and_every_name_in_255():
    assert len(NAME) == 143
    payloads = [r.payload for r in _tables(_lab()).values()]
    comments = [c for p in payloads for c in re.findall(r'comment "([^"]*)"', p)]
    names = [n for p in payloads for n in re.findall(r"^add (?:chain|set|map) ip kube-proxy (\S+)", p, re.M)]
    assert max(len(c.encode()) for c in comments) == 128  # the long ones cut to exactly what nft takes
    assert max(len(n.encode()) for n in names) < 256 and any(f"-{NS}/{SVC}/tcp/{PORT}__" in n for n in names)
    assert all(nft_refusal(p) is None for p in payloads)


def test_the_no_endpoint_elements_comment_is_the_service_ports_name_cut_as_kube_proxy_cuts_it():
    lab = _lab()
    n1, n2 = (n.netns for n in lab.nodes)
    cut = NAME[:128]
    tables = _tables(lab)
    # n2 has no endpoint of the Local Service: outside traffic to its nodePort is dropped there
    assert f'element no-endpoint-nodeports tcp . 30090 comment "{cut}" : drop' in tables[n2].listing
    assert not [line for line in tables[n1].listing if "30090" in line and "no-endpoint" in line]
    # the Service without endpoints: rejected on every node, its own name cut the same way
    empty = f"{NS}/{SVC[:-1]}e:{PORT}"[:128]
    for ns in (n1, n2):
        assert f'element no-endpoint-services 10.96.0.41 . tcp . 80 comment "{empty}" : goto reject-chain' in \
            tables[ns].listing
    assert nftables.comment_text(NAME) == cut and nftables.comment_text("default/web:http") == "default/web:http"


def test_a_chain_name_past_240_characters_is_cut_with_dots_after_its_hash():
    """hashAndTruncate: the hash of the whole name first, so that two long names cut alike stay apart."""
    long = "x" * 300
    out = nftables.hash_and_truncate(long)
    assert len(out) == 240 and out.endswith("...") and out[8] == "-"
    assert out[:8] != nftables.hash_and_truncate(long + "y")[:8]
    assert len(nftables.hash_and_truncate("y" * 231)) == 240 and not nftables.hash_and_truncate("y" * 231).endswith(
        "...")


def test_the_kernels_json_of_the_cut_comment_lists_as_planned():
    """status reads the element back from ``nft -j``: 128 characters, as planned, so no drift."""
    cut = NAME[:128]
    data = {"nftables": [{"map": {
        "family": "ip", "name": "no-endpoint-nodeports", "table": "kube-proxy", "type": ["inet_proto", "inet_service"],
        "map": "verdict", "elem": [[{"elem": {"val": {"concat": ["tcp", 30090]}, "comment": cut}}, {"drop": None}]]}}]}
    assert f'element no-endpoint-nodeports tcp . 30090 comment "{cut}" : drop' in realize.listing(data)


def test_up_and_status_against_the_fake_kernel_which_refuses_what_nft_refuses(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    lab = _lab("nclfk")
    k = FakeKernel()
    lab_up.up(lab, k, features=(), journal=Journal(k))
    assert lab_status.status(state_mod.load_state("nclfk"), k).ok
    assert all(("ip", "kube-proxy") in k.ns[n.netns].nft for n in lab.nodes)
    refused = nft_refusal(f'add element ip kube-proxy no-endpoint-nodeports {{ tcp . 1 comment "{NAME}" : drop }}')
    assert isinstance(refused, FakeError) and "comment too long, 128 characters maximum allowed" in str(refused)
    assert nft_refusal(f"add chain ip kube-proxy {'c' * 256}") is not None
    assert nft_refusal(f"add chain ip kube-proxy {'c' * 255}") is None


@pytest.mark.parametrize("text", [f'comment "{"é" * 64}"', f'comment "{"a" * 128}"'])
def test_a_comment_of_128_bytes_passes_and_a_byte_more_does_not(text):
    assert nft_refusal(text) is None
    assert nft_refusal(text.replace('"a', '"aa').replace('"é', '"aé')) is not None
