"""break conntrack-stale-entry holds while the student looks at it (root, real conntrack): QA q26 1.

The entry was inserted UNREPLIED with a 600 s timeout. The first DNS query a student sent from the client's port
40053 to see the fault (dig -b, or trace --sport 40053) was a packet of that flow: the kernel refreshed the entry
to UDP's unreplied timeout (nf_conntrack_udp_timeout, 30 s), and 30 s later the fault was gone, status and quiz
calling the lab repaired. A real stale entry is one the old endpoint answered (SEEN_REPLY, ASSURED): each packet
of the flow refreshes it to the stream timeout (nf_conntrack_udp_timeout_stream, 120 s). Read with `conntrack -L`
(the independent tool) and netlab's ctnetlink dump.
"""

from __future__ import annotations

import re

import pytest

from breaking import SERVICES, dns_answers, shipped_lab
from helpers import in_netns, netlab
from netlab.breaks import catalogue
from netlab.breaks.changes import STALE_SPORT, dns_udp, gone_endpoint
from netlab.kernel import conntrack
from netlab.realize.state import running_lab

pytestmark = pytest.mark.root

SECONDS = re.compile(r"^udp\s+17\s+(\d+) ")  # conntrack -L's "udp 17 599 src=...": the seconds left


def sysctl(ns: str, name: str) -> int:
    return int(in_netns(ns, "sysctl", "-n", name, check=True).stdout)


def test_a_query_from_the_clients_port_keeps_the_stale_entry(tmp_path_factory):
    with shipped_lab(tmp_path_factory, SERVICES, prefix="cs") as (lab, path):
        model = running_lab(lab).resolved()
        client = catalogue.resolve_target(catalogue.scenario("conntrack-stale-entry"), model, None)
        node = model.node(client.node).netns
        cip, port, _ = dns_udp(model)
        gone = str(gone_endpoint(model))
        unreplied = sysctl(node, "net.netfilter.nf_conntrack_udp_timeout")
        stream = sysctl(node, "net.netfilter.nf_conntrack_udp_timeout_stream")
        assert unreplied < stream, (unreplied, stream)

        def entry() -> str:
            out = in_netns(node, "conntrack", "-L", "-p", "udp", "-s", str(client.ip), "--sport", str(STALE_SPORT),
                           "-d", cip, "--dport", str(port), check=True).stdout
            [line] = [x for x in out.splitlines() if x.strip()]
            return line

        done = netlab("break", "conntrack-stale-entry", "--lab", lab, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"src={gone} " in entry(), entry()
        assert not dns_answers(model, client, STALE_SPORT), "the student's query from the client's port"
        after = entry()  # the query was a packet of the flow: the kernel refreshed the entry
        assert f"src={gone} " in after, after
        m = SECONDS.match(after)
        assert m is not None, after
        assert int(m.group(1)) > unreplied, f"cut to the unreplied timeout ({unreplied} s): {after}"
        [mine] = [r for r in conntrack.entries(node, "udp") if r.orig["sport"] == str(STALE_SPORT)]
        assert mine.timeout is not None and unreplied < mine.timeout <= stream, mine.text()
        assert "[ASSURED]" in after and "ASSURED" in mine.status_names, after  # what an answered flow leaves
        assert netlab("status", "--lab", lab, check=False).returncode == 1
