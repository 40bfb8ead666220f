"""A stale UDP entry is keyed on its reply's source, as kube-proxy's cleanup keys it (root, real conntrack): QA q62k 1.

An entry made with its reply tuple (``conntrack -I ... -r ENDPOINT``, as a learner or another tool writes one) has
no DST_NAT_DONE bit: ``status`` called it stale (its reply comes from no endpoint) and ``up`` said "deleted", but
its delete asked ``--dst-nat``, which wants that bit, and the entry stayed. ``up`` now deletes it by its reply's
source (``conntrack -L``, the independent tool, lists it no more), and an entry gone before the delete is said as
such, never "deleted".
"""

from __future__ import annotations

import pytest

from helpers import in_netns, lab_up, netlab, unique_lab, write_topology
from netlab.realize.state import running_lab
from netlab.services import stale

pytestmark = pytest.mark.root

CIP = "10.96.0.20"  # Service u's ClusterIP: its one endpoint is web-1 (n1's 10.244.0.x)


def topology(lab: str) -> str:
    return f"""name: {lab}
nodes:
  - name: n1
  - name: n2
pods:
  - name: web-1
    node: n1
    labels: {{app: web}}
    containers:
      - name: u
        ports: [{{containerPort: 8080, protocol: UDP}}]
  - name: client
    node: n1
  - name: other
    node: n2
services:
  - name: u
    selector: {{app: web}}
    clusterIP: {CIP}
    ports: [{{name: u, port: 53, targetPort: 8080, protocol: UDP}}]
"""


def pod_ip(lab: str, pod: str) -> str:
    return str(running_lab(lab).resolved().pod(pod).ip)


def insert_replied(ns: str, client: str, to: str) -> None:
    """The QA's entry: client:5555 -> CIP:53, its reply from ``to`` (no --dst-nat: no DST_NAT_DONE bit)."""
    in_netns(ns, "conntrack", "-I", "-p", "udp", "-s", client, "-d", CIP, "--sport", "5555", "--dport", "53",
             "-r", to, "-q", client, "--reply-port-src", "53", "--reply-port-dst", "5555", "-t", "120",
             "-u", "SEEN_REPLY", check=True)


def listed(ns: str) -> str:
    return in_netns(ns, "conntrack", "-L", "-p", "udp", "--orig-port-src", "5555", check=True).stdout


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("fkb")
    path = write_topology(tmp_path_factory.mktemp(name), topology(name), f"{name}.yaml")
    with lab_up(path, name):
        yield name


def test_up_deletes_an_entry_whose_reply_comes_from_no_endpoint(lab):
    ns, client, gone = f"{lab}-n1", pod_ip(lab, "client"), pod_ip(lab, "other")
    insert_replied(ns, client, gone)
    assert f"src={gone} " in listed(ns)
    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 1, st.stdout + st.stderr
    line = f"DNATs {client}:5555 → {CIP}:53 to {gone}:53, which is no endpoint"
    assert line in st.stdout, st.stdout
    up = netlab("up", "--lab", lab, check=False)
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"deleted a UDP conntrack entry in {ns} that {line}" in up.stdout, up.stdout
    assert listed(ns).strip() == "", listed(ns)  # the kernel's view: gone
    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 0, st.stdout + st.stderr


def test_an_entry_gone_before_the_delete_is_not_said_deleted(lab):
    ns, client, gone = f"{lab}-n1", pod_ip(lab, "client"), pod_ip(lab, "other")
    insert_replied(ns, client, gone)
    found = [s for s in stale.find(running_lab(lab).resolved()) if s.to == f"{gone}:53"]
    assert len(found) == 1, found
    in_netns(ns, "conntrack", "-D", "-p", "udp", "--orig-port-src", "5555", check=True)  # it ends meanwhile
    done, problems = stale.delete(found, lab)
    assert done == [], done
    assert problems == [f"found {found[0].describe()}, but the kernel deleted no entry of it (gone before the delete)"]
    insert_replied(ns, client, gone)
    done, problems = stale.delete(found, lab)
    assert (done, problems) == ([f"deleted {found[0].describe()}"], [])
    assert listed(ns).strip() == ""
