"""netlab's Python API: `sudo python quickstart.py` brings the lab up, checks it and takes it down."""

import signal
import sys
from pathlib import Path

from netlab import Lab

# SIGTERM (kill, a CI job's timeout) and SIGHUP (a closed terminal) end Python where it stands, the lab up; as
# SystemExit they unwind the block
for stop in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(stop, lambda signum, frame: sys.exit(128 + signum))
name = sys.argv[1] if len(sys.argv) > 1 else "quickstart"
with Lab.up(Path(__file__).with_name("lab.yaml"), name=name) as lab:   # down when the block ends, even on errors
    assert lab.exec("web-1", ["hostname"]).stdout.strip() == "web-1"      # in the pod's network and UTS namespaces
    r = lab.reach("client", "web-2", proto="tcp", port=8080)
    assert r.reachable and r.seen_source == lab.pod("client").ip        # no NAT between pods
    assert not lab.reach("client", "web-2", proto="tcp", port=9999).reachable
    dns = lab.reach("client", "kube-dns", proto="udp", port=53).dns          # a real DNS question, answered
    assert dns is not None and dns.answer is not None and dns.answer.rcode == "NOERROR"
    assert dns.answer.a == (dns.expected_a,)                              # the DNS Service's ClusterIP
    t = lab.trace("client", "svc/web", proto="tcp", port=80)
    assert t.delivered and t.endpoint is not None                       # the endpoint the Service's DNAT picked:
    assert t.endpoint.pod in {"web-1", "web-2"}
    report = lab.probe()
    assert report.ok, report.failures
    assert lab.status().clean
    print(f"lab {lab.name}: {report.summary.text}")
