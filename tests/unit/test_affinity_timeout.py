"""sessionAffinityConfig.clientIP.timeoutSeconds: validated as the API server does, written as kube-proxy writes it.

kube-proxy's StickyMaxAgeSeconds is the timeout: iptables mode's ``-m recent --rcheck --seconds N --reap``
(pkg/proxy/iptables/proxier.go), nftables mode's affinity sets' ``timeout Ns`` (pkg/proxy/nftables/proxier.go).
The API server allows 1-86400 and no sessionAffinityConfig beside sessionAffinity None; 10800 when absent.
"""

from __future__ import annotations

import pytest

from netlab.errors import TopologyError
from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.plan.build import build_plan
from netlab.realize import netfilter_drift, nft_sync, nftables as realize
from netlab.realize import state_dir

TOPOLOGY = """name: ndaff
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}]
pods:
  - {{name: a, node: n1, labels: {{app: web}}}}
  - {{name: b, node: n1, labels: {{app: web}}}}
services:
  - name: web
    selector: {{app: web}}
    sessionAffinity: {affinity}
{config}    ports: [{{port: 80, targetPort: 8080}}]
"""


def lab(mode: str = "iptables", seconds: int | None = 60, affinity: str = "ClientIP"):
    config = "" if seconds is None else f"    sessionAffinityConfig: {{clientIP: {{timeoutSeconds: {seconds}}}}}\n"
    text = TOPOLOGY.format(mode=mode, affinity=affinity, config=config)
    return resolve(validate_source(parse_yaml(text, "t.yaml")))


def nat(lab_):
    return next(r for r in build_plan(lab_).of_kind("nat") if r.netns == "ndaff-n1" and "KUBE-SERVICES" in r.chains)


def nft(lab_):
    return next(r for r in build_plan(lab_).of_kind("nft") if r.netns == "ndaff-n1")


def test_the_api_servers_range_and_rule():
    assert lab().topo.services[0].affinity_seconds == 60
    assert lab(seconds=None).topo.services[0].affinity_seconds == 10800
    assert lab(seconds=86400).topo.services[0].affinity_seconds == 86400
    for seconds, said in ((0, "0 is too small (limit 1)"), (86401, "86401 is too large (limit 86400)")):
        with pytest.raises(TopologyError) as err:
            lab(seconds=seconds)
        assert "services[0].sessionAffinityConfig.clientIP.timeoutSeconds: " + said in str(err.value)
    with pytest.raises(TopologyError, match=r"services\[0\]\.sessionAffinityConfig: must not be set when "
                                            "sessionAffinity is None"):
        lab(affinity="None")


def test_iptables_mode_checks_the_recent_list_for_that_many_seconds():
    rules = [r for r in nat(lab()).rules if "--rcheck" in r]
    assert len(rules) == 2 and all(" -m recent --rcheck --seconds 60 --reap --name KUBE-SEP-" in r for r in rules)
    assert all("--seconds 10800 --reap" in r for r in nat(lab(seconds=None)).rules if "--rcheck" in r)


def test_nftables_mode_gives_the_affinity_sets_that_timeout():
    sets = [line for line in nft(lab("nftables")).listing if line.startswith("set affinity-")]
    assert len(sets) == 2 and all(line.endswith(" type ipv4_addr timeout 60s") for line in sets)
    assert "flags dynamic,timeout ; timeout 60s ;" in nft(lab("nftables")).payload


def test_status_sees_another_timeout_and_up_writes_it(tmp_path, monkeypatch):
    """The kernel holds the default's rules and sets; the plan says 60 s: drift in both modes, and up's sync."""
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    k = FakeKernel()
    lab_up.up(lab(seconds=None), k, features=(), journal=Journal(k))
    detail = netfilter_drift.table_drift(nat(lab()), k.iptables_save("ndaff-n1", "nat"))
    assert len([d for d in detail if d.startswith("missing rule: ") and "--seconds 60 --reap" in d]) == 2
    assert len([d for d in detail if d.startswith("extra rule: ") and "--seconds 10800 --reap" in d]) == 2

    old, new = nft(lab("nftables", seconds=None)), nft(lab("nftables"))
    drift = realize.drift(new, {"netlab-listing": list(old.listing)})
    assert len(drift) == 4 and all(d.startswith("missing set affinity-") and d.endswith(" timeout 60s")
                                   for d in drift[:2])
    assert all(d.startswith("extra set affinity-") and d.endswith(" timeout 10800s") for d in drift[2:])
    # A set's definition cannot change in place: the whole table again, with the new timeout.
    delta = nft_sync.listing_delta("ip", "kube-proxy", old.listing, new.listing)
    assert nft_sync.is_replay(delta, "ip", "kube-proxy") and delta.count("timeout 60s ;") == 2
