"""QA q39 3: probe under netlab's own impairments, with real traffic. A loss of 100% on client's eth0 failed 28
flows "no reply in 1 s" and probe said nothing of it (trace did); a rate of 1mbit there failed the Service spread
check, whose 200 connections, opened at once, overflow the rate limiter's queue (tbf: 50 ms of 1mbit and a
3,200-byte bucket, under 10 KB; 200 SYNs alone are 14.8 KB), while a flow alone gets through. Each is named in a
hint now, the spread check's in its failure's words."""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import in_netns, lab_up, netlab, unique_lab, write_topology
from netlab.errors import netlab_command

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("ph")
    path = write_topology(tmp_path_factory.mktemp("impaired"), f"""\
name: {name}
nodes:
  - name: n1
  - name: n2
pods:
  - {{name: web-1, node: n1, labels: {{app: web}}, containers: [{{name: http, ports: [{{containerPort: 8080}}]}}]}}
  - {{name: web-2, node: n2, labels: {{app: web}}, containers: [{{name: http, ports: [{{containerPort: 8080}}]}}]}}
  - {{name: client, node: n1}}
services:
  - {{name: web, selector: {{app: web}}, ports: [{{name: http, port: 80, targetPort: 8080}}]}}
""")
    with lab_up(path, name):
        yield name


def _probe(lab: str) -> dict:
    proc = netlab("probe", "--lab", lab, "-o", "json", check=False)
    assert proc.returncode in (0, 1), proc
    return json.loads(proc.stdout)


def test_a_loss_netlab_set_is_named_in_probes_hints(lab):
    netlab("impair", "--lab", lab, "client:eth0", "--loss", "100%")
    try:
        tables = json.loads(in_netns(f"{lab}-n1", "nft", "-j", "list", "tables", check=True).stdout)["nftables"]
        assert {"family": "netdev", "name": "netlab-impair"}.items() <= next(
            t["table"] for t in tables if "table" in t and t["table"]["name"] == "netlab-impair").items()
        out = _probe(lab)
        failed = [r for r in out["probes"] if not r["as_expected"]]
        assert failed and all("client" in (r["source"], r["destination"]) for r in failed), failed
        said = [h for h in out["hints"] if h.startswith("client:eth0 has netlab's impairment loss 100% (it drops "
                                                        "every frame it sends), on the path of ")]
        assert len(said) == 1, out["hints"]
        assert f"{len(failed) + 1} flows that failed" in said[0], (said, len(failed))  # and the spread check
        assert said[0].endswith(f"`{netlab_command(f'impair --lab {lab} client:eth0 --clear')}` removes it")
    finally:
        netlab("impair", "--lab", lab, "client:eth0", "--clear")
    assert _probe(lab)["hints"] == []  # no impairment, nothing failed


def test_a_spread_check_that_overflows_a_rate_limit_says_so(lab):
    netlab("impair", "--lab", lab, "client:eth0", "--rate", "1mbit")
    try:
        qdisc = json.loads(subprocess.run(["tc", "-n", f"{lab}-client", "-j", "qdisc", "show", "dev", "eth0"],
                                          capture_output=True, text=True, check=True).stdout)
        assert any(q["kind"] == "tbf" for q in qdisc), qdisc
        out = _probe(lab)
        dist = out["distributions"][0]
        assert not dist["as_expected"], dist
        burst = [h for h in out["hints"] if h.startswith("svc/web tcp/80: ")]
        assert len(burst) == 1, out["hints"]
        words = [p for p in dist["problems"] if "connections failed" in p or "echo line did not come back" in p]
        assert words and burst[0].startswith(f"svc/web tcp/80: {'; '.join(words)}, across client:eth0, limited to "
                                             "1mbit: this check opens its 200 connections at once"), (burst, words)
        assert not any("not an echo reply" in p for p in dist["problems"]), dist["problems"]
    finally:
        netlab("impair", "--lab", lab, "client:eth0", "--clear")
