"""netlab in your own tests: `sudo pytest examples/pytest` (netlab's pytest plugin gives the fixtures)."""

import pytest

# One lab for the module (a unique name per run and xdist worker), taken down after its last test.
pytestmark = pytest.mark.netlab("lab.yaml", scope="module")


def test_client_reaches_a_pod_on_the_other_node(netlab_lab):
    r = netlab_lab.reach("client", "web-2", proto="tcp", port=8080)
    assert r.reachable and r.answered_by == "web-2"


def test_pod_to_pod_traffic_is_not_source_natted(netlab_lab):
    r = netlab_lab.reach("client", "web-2", proto="tcp", port=8080)
    assert r.seen_source == netlab_lab.pod("client").ip


def test_the_service_spreads_over_its_endpoints(netlab_lab):
    report = netlab_lab.probe()
    (spread,) = [d for d in report.distributions if d.service == "web"]
    assert spread.as_expected, spread.problems
    assert set(spread.endpoints) == {"web-1", "web-2"} and min(spread.endpoints.values()) > 0
