"""kube-proxy's own health server, 10256 on every node (no root): what it answers, as pkg/proxy/healthcheck's
proxy_health.go and Go's net/http write it, served by the lab's echo server (sockets on 127.0.0.1 in this process;
the nodes' namespaces are the root test's, test_health_check_port.py), said by `status` when it is not served, and
the one host port a topology may not take because of it.

QA: nothing answered on a node's 10256, where real kube-proxy always listens (healthzBindAddress 0.0.0.0:10256)
and cloud load balancers ask /healthz for Cluster Services (KEP-3836).
"""

from __future__ import annotations

import json
import re

import pytest

from helpers import located_problems
from netlab.model.fields import KUBE_PROXY_HEALTHZ_PORT, NODE_PORT_RANGE
from netlab.plan.health import proxy_health
from netlab.workload import proxyhealth
from test_health_checks import FakeServer, free_port, get, lab, server  # noqa: F401 - server: a fixture
from test_hostports import topo

GO_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,9})? \+0000 UTC m=\+\d+\.\d{9}"


def test_every_node_has_kube_proxys_health_server_on_10256():
    got = proxy_health(lab())
    assert [(p.node, p.netns, p.port, p.status) for p in got] == [
        ("n1", "hc-n1", 10256, 200), ("n2", "hc-n2", 10256, 200), ("n3", "hc-n3", 10256, 200)]
    assert got[0].spec() == {"id": "healthz/n1", "netns": "hc-n1", "node": "n1", "port": 10256, "status": 200,
                             "body": "", "proxy": True}
    # no nodePort nor healthCheckNodePort can be it: the range is fixed, and 10256 is outside it
    assert not NODE_PORT_RANGE[0] <= KUBE_PROXY_HEALTHZ_PORT <= NODE_PORT_RANGE[1]


def test_go_s_time_string_with_its_monotonic_reading():
    # 2006-01-02 15:04:05 UTC, Go's reference time
    assert proxyhealth.go_time(1136214245_123456789, 12_345678901) == \
        "2006-01-02 15:04:05.123456789 +0000 UTC m=+12.345678901"
    assert proxyhealth.go_time(1136214245_120000000, 5) == "2006-01-02 15:04:05.12 +0000 UTC m=+0.000000005"
    assert proxyhealth.go_time(1136214245_000000000, 0) == "2006-01-02 15:04:05 +0000 UTC m=+0.000000000"


@pytest.mark.parametrize("target,path", [("/healthz", "/healthz"), ("/healthz?probe=1", "/healthz"),
                                         ("http://10.0.0.1:10256/livez", "/livez"), ("/healthz/", "/healthz/"),
                                         ("http://h", "/")])
def test_the_path_is_the_targets_without_its_query(target, path):
    assert proxyhealth.path_of(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode()) == path


def split(answer: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    return lines[0], [tuple(line.split(": ", 1)) for line in lines[1:]], body  # type: ignore[misc]


def test_healthz_livez_and_any_other_path_byte_for_byte():
    now, mono = 1136214245_123456789, 12_345678901
    t = "2006-01-02 15:04:05.123456789 +0000 UTC m=+12.345678901"
    date = "Mon, 02 Jan 2006 15:04:05 GMT"
    status, headers, body = split(proxyhealth.answer(b"GET /healthz HTTP/1.1\r\n\r\n", date, now, mono))
    length = len(body)
    assert status == "HTTP/1.1 200 OK"
    assert body == f'{{"lastUpdated": "{t}","currentTime": "{t}", "nodeEligible": true}}'.encode()
    assert headers == [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff"),
                       ("Connection", "close"), ("Date", date), ("Content-Length", str(len(body)))]
    status, _, body = split(proxyhealth.answer(b"POST /livez?x HTTP/1.0\r\n\r\n", date, now, mono))
    assert (status, body) == ("HTTP/1.1 200 OK", f'{{"lastUpdated": "{t}","currentTime": "{t}"}}'.encode())
    status, headers, body = split(proxyhealth.answer(b"GET /healthz/ HTTP/1.1\r\n\r\n", date, now, mono))
    assert (status, body) == ("HTTP/1.1 404 Not Found", b"404 page not found\n")
    assert headers[:2] == [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")]
    # HEAD: the same headers (the length of the body it would have sent), no body
    status, headers, body = split(proxyhealth.answer(b"HEAD /healthz HTTP/1.1\r\n\r\n", date, now, mono))
    assert status == "HTTP/1.1 200 OK" and body == b"" and ("Content-Length", str(length)) in headers


def test_the_echo_server_serves_it_and_says_so(server):  # noqa: F811 - the fixture
    srv, running = server
    proxy = proxy_health(lab())[0]
    spec = {**proxy.spec(), "port": free_port()}
    lines: list[str] = []
    running.call(lambda: lines.extend(srv.sync_health([spec])))
    assert lines == ["R healthz/n1"]
    status, headers, body = split(get(spec["port"]))
    assert status == "HTTP/1.1 200 OK" and [h for h, _ in headers] == [
        "Content-Type", "X-Content-Type-Options", "Connection", "Date", "Content-Length"]
    got = json.loads(body)
    assert list(got) == ["lastUpdated", "currentTime", "nodeEligible"] and got["nodeEligible"] is True
    assert re.fullmatch(GO_TIME, got["currentTime"]) and got["lastUpdated"] == got["currentTime"]
    status, _, body = split(get(spec["port"], b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status == "HTTP/1.1 200 OK" and list(json.loads(body)) == ["lastUpdated", "currentTime"]
    assert split(get(spec["port"], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == "HTTP/1.1 404 Not Found"
    assert get(spec["port"], b"hello\n").startswith(b"HTTP/1.1 400 Bad Request")
    served: list[str] = []
    running.call(lambda: served.extend(srv.health_served()))
    assert served == [f"C healthz/n1 {spec['port']} 200 -1"]  # what `status` compares (port, 200, no endpoints)


def test_status_names_the_node_whose_health_server_is_not_served(monkeypatch):
    fake = FakeServer(running=True)
    health = fake.install(monkeypatch)
    from netlab.workload.echocontrol import PROTOCOL
    from netlab.workload.launch import Answer

    served = Answer(complete=True, version=PROTOCOL)  # this netlab's server (it says so when asked)
    for c in health._checks(lab()):
        served.health[c.key] = (c.port, c.status, c.local)
    del served.health["healthz/n2"]
    served.health["healthz/n3"] = (10256, 503, -1)
    monkeypatch.setattr("netlab.workload.launch.ask", lambda name, request, count=0: served)
    assert health.drift(lab(), "sudo netlab up --lab hc") == [
        "kube-proxy: kube-proxy's health server on node n2 (port 10256/TCP: /healthz, /livez) is not served; "
        "`sudo netlab up --lab hc` serves it",
        "kube-proxy: kube-proxy's health server on node n3 (port 10256/TCP: /healthz, /livez) answers 503 on port "
        "10256, want 200 on 10256; `sudo netlab up --lab hc` sets it"]


def test_a_host_port_on_kube_proxys_health_port_is_refused_where_it_is_written(tmp_path):
    pods = "  - {name: a, node: n1, containers: [{name: c, ports: [{containerPort: 80, hostPort: 10256}]}]}\n"
    assert located_problems(topo(tmp_path, pods), tmp_path) == [
        (5, "pods[0].containers[0].ports[0].hostPort",
         "hostPort 10256/TCP is kube-proxy's health port on every node (healthzBindAddress 0.0.0.0:10256: /healthz, "
         "which load balancers ask, and /livez); portmap would DNAT those checks to the pod: pick another")]
    udp = pods.replace("hostPort: 10256", "protocol: UDP, hostPort: 10256")  # a UDP one takes nothing of it
    assert located_problems(topo(tmp_path, udp), tmp_path) == []


def test_a_node_namespace_made_again_is_listened_in_anew(server, monkeypatch):  # noqa: F811 - the fixture
    """A node's namespace deleted and made again under its name is a new one: the check's socket, still in the old
    one, is not served there (status names it), and the next sync listens in the new one."""
    from netlab.workload import healthserve

    srv, running = server
    births = {"hc-n1": (1, 2, 3)}
    monkeypatch.setattr(healthserve, "_birth", lambda netns: births.get(netns))
    spec = {**proxy_health(lab())[0].spec(), "port": free_port()}
    running.call(lambda: list(srv.sync_health([spec])))
    first = srv.health["healthz/n1"][1]
    served: list[str] = []
    running.call(lambda: served.extend(srv.health_served()))
    assert served == [f"C healthz/n1 {spec['port']} 200 -1"]
    births["hc-n1"] = (1, 2, 4)  # made again: another change time
    served.clear()
    running.call(lambda: served.extend(srv.health_served()))
    assert served == []
    lines: list[str] = []
    running.call(lambda: lines.extend(srv.sync_health([spec])))
    assert lines == ["R healthz/n1"] and srv.health["healthz/n1"][1] is not first
    assert srv.health["healthz/n1"][0] == ("hc-n1", spec["port"], (1, 2, 4))
    assert split(get(spec["port"]))[0] == "HTTP/1.1 200 OK"
