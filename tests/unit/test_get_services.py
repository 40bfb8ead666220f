"""``netlab get services``: each Service port's endpoints, structured in -o json/yaml, "ip:port" in the table."""

from __future__ import annotations

from netlab.api import views
from netlab.api.jsonio import from_json, to_json
from netlab.api.results import EndpointInfo, PodInfo, ServiceInfo
from netlab.cli.get import _services
from netlab.model.addressing import allocate
from netlab.model.lab import Lab
from netlab.model.topology import Topology

TOPOLOGY = {
    "name": "g",
    "nodes": [{"name": "n1"}, {"name": "n2"}],
    "pods": [{"name": "web-2", "node": "n2", "labels": {"app": "web"}},
             {"name": "web-1", "node": "n1", "labels": {"app": "web"}},
             {"name": "client", "node": "n1"}],
    "services": [{"name": "web", "selector": {"app": "web"}, "type": "NodePort",
                  "ports": [{"name": "http", "port": 80, "targetPort": 8080},
                            {"name": "dns", "port": 53, "protocol": "UDP"}]},
                 {"name": "none", "selector": {"app": "nothing"}, "ports": [{"port": 80}]}],
}


def lab() -> Lab:
    topo = Topology.model_validate(TOPOLOGY)
    addressing, problems = allocate(topo)
    assert not problems, problems
    return Lab(topo, addressing)


def test_endpoints_are_objects_in_json_and_ip_port_in_the_table():
    model = lab()
    ip = {p.name: str(p.ip) for p in model.pods}
    web, empty = views.services(model)
    http, dns = web.ports
    # Each endpoint says which pod, on which node, at which address and (target) port, sorted by pod IP,
    # as an EndpointSlice's targetRef, nodeName and addresses with its port.
    assert to_json(http)["endpoints"] == [
        {"pod": "web-1", "node": "n1", "ip": ip["web-1"], "port": 8080},
        {"pod": "web-2", "node": "n2", "ip": ip["web-2"], "port": 8080},
    ]
    assert [(e.pod, e.port) for e in dns.endpoints] == [("web-1", 53), ("web-2", 53)]
    assert all(isinstance(e, EndpointInfo) for e in dns.endpoints)
    assert to_json(empty)["ports"][0]["endpoints"] == []
    # What `get services -o json` prints reads back as the same Service (the API builds results from it).
    assert from_json(ServiceInfo, to_json(web)) == web
    # The table is unchanged: each distinct ip:port once, of every port of the Service.
    headers, rows = _services((web, empty), wide=False)
    column = headers.index("endpoints")
    assert rows[0][column] == ",".join(sorted(f"{ip[p]}:{n}" for p in ("web-1", "web-2") for n in (53, 8080)))
    assert rows[1][column] == "<none>"


# --- Services of two namespaces with one name -------------------------------------------------------

TWINS = {
    "name": "g",
    "nodes": [{"name": "n1"}],
    "pods": [{"name": "a", "node": "n1", "namespace": "x", "labels": {"app": "web"}},
             {"name": "b", "node": "n1", "namespace": "y", "labels": {"app": "web"}}],
    "services": [{"name": "web", "namespace": ns, "selector": {"app": "web"}, "ports": [{"port": 80}]} for ns in "xy"]
               + [{"name": "db", "namespace": "x", "ports": [{"port": 5432}]}],
}


def twins() -> Lab:
    from netlab.model.lab import resolve

    return resolve(Topology.model_validate(TWINS))


def pod_infos() -> tuple[PodInfo, ...]:
    """``get pods``' rows of the lab, as views.pods makes them from a running lab's state (containers aside)."""
    return tuple(PodInfo(name=p.name, node=p.node, ip=str(p.ip), netns=p.netns, mac=p.mac, labels=p.labels,
                         containers=(), namespace=p.spec.namespace) for p in twins().pods)


def test_get_services_namespace_slash_name_picks_one_and_a_bare_name_every_namespaces():
    """`get services x/web` failed ("no service 'x/web' (services: web, web, kube-dns)") where trace takes
    svc/x/web; NAMESPACE/NAME picks the one of that namespace, NAME every Service of that name."""
    from netlab.cli.get import select

    svcs = views.services(twins())
    assert [(s.namespace, s.name) for s in select(svcs, ("x/web",), "services", "g")[0]] == [("x", "web")]
    assert [(s.namespace, s.name) for s in select(svcs, ("web",), "services", "g")[0]] == [("x", "web"), ("y", "web")]
    picked = select(svcs, ("kube-system/kube-dns", "db", "x/db"), "services", "g")
    assert [s.name for s in picked[0]] == ["db", "kube-dns"] and picked[1] == []
    # a NAME that picks nothing: the others picked all the same, and a line naming what was looked for, where
    assert select(svcs, ("z/web", "web"), "services", "g") == (
        svcs[:2], ["lab g has no service 'web' in namespace 'z' (services: x/web, y/web, db, kube-dns)"])
    # pods: NAMESPACE/NAME is the pod only in that namespace
    pods = pod_infos()
    assert [p.name for p in select(pods, ("x/a",), "pods", "g")[0]] == ["a"]
    assert select(pods, ("y/a",), "pods", "g") == ((), ["lab g has no pod 'a' in namespace 'y' (pods: a, b, kube-dns)"])


def test_the_table_begins_with_a_namespace_column_when_names_repeat():
    """Two rows `web` could not be told apart (only -o wide had NAMESPACE): kubectl -A's column comes first."""
    from netlab.cli.get import rows_of

    svcs = views.services(twins())
    headers, rows = rows_of("services", svcs, wide=False)
    assert headers[:3] == ["namespace", "name", "type"]
    assert [row[:2] for row in rows] == [["x", "web"], ["y", "web"], ["x", "db"], ["kube-system", "kube-dns"]]
    # one of them alone, or names that do not repeat: the table as it was
    assert rows_of("services", svcs[:1], wide=False)[0][0] == "name"
    assert rows_of("pods", pod_infos(), wide=False)[0][0] == "name"  # pod names are unique in a lab


def test_wide_tables_begin_with_the_namespace_as_kubectl_get_all_namespaces_wide():
    """README: "when two rows share a name the table begins with a NAMESPACE column"; -o wide had it after
    ENDPOINTS (or IP) instead. kubectl get -A -o wide begins with NAMESPACE, names repeating or not; once."""
    from netlab.cli.get import rows_of

    svcs = views.services(twins())
    for items in (svcs, svcs[:1]):
        headers, rows = rows_of("services", items, wide=True)
        assert headers[:3] == ["namespace", "name", "type"] and headers.count("namespace") == 1
        assert [row[:2] for row in rows][:1] == [["x", "web"]]
    headers, rows = rows_of("pods", pod_infos(), wide=True)
    assert headers[:3] == ["namespace", "name", "ready"] and headers.count("namespace") == 1
    assert {row[1]: row[0] for row in rows}["kube-dns"] == "kube-system"
    assert "namespace" not in rows_of("nodes", views.nodes(twins()), wide=True)[0]


def test_get_help_says_how_namespaces_are_named_and_shown():
    from click.testing import CliRunner

    from netlab.cli import cli

    out = " ".join(CliRunner().invoke(cli, ["get", "--help"]).output.split())
    assert "each NAME or NAMESPACE/NAME" in out and "x/web only the one of namespace x" in out
    assert "when two rows share a name the table begins with kubectl -A's NAMESPACE column" in out
    assert "-o wide always begins with it, as kubectl get -A -o wide" in out
    assert ("-o wide begins with the Kubernetes NAMESPACE and adds the selector and the DNS name, then the external "
            "traffic policy") in out


# --- NAMES the lab does not have: kubectl's NotFound ------------------------------------------------


def fake_lab(monkeypatch):
    """`get` on the twins lab as if it were up: Lab.attach gives its pods, nodes and Services."""
    import types

    from netlab import api
    from netlab.cli import get as cli_get

    model = twins()

    def pods(selector=None):
        key, _, value = (selector or "").partition("=")
        return tuple(p for p in pod_infos() if not selector or p.labels.get(key) == value)

    from netlab.kernel import iptables
    from netlab.realize.state import LabState

    lab = types.SimpleNamespace(name="g", pods=pods, nodes=lambda: views.nodes(model),
                                services=lambda: views.services(model),
                                state=lambda: LabState(lab="g", extra={"iptables": "nft"}))
    monkeypatch.setattr(iptables, "machine_backend", lambda: "nft")  # the backend the lab was made with
    monkeypatch.setattr(cli_get, "require_root", lambda: None)
    monkeypatch.setattr(api.Lab, "attach", staticmethod(lambda name: lab))


def get(*args):
    from click.testing import CliRunner

    from netlab.cli import cli

    return CliRunner().invoke(cli, ["get", "--lab", "g", *args])


def test_get_prints_the_names_it_finds_and_says_each_missing_one_on_stderr_exit_1(monkeypatch):
    """`get services a b x/missing` failed whole (exit 2, nothing printed) when one NAME was missing; kubectl
    prints what it finds, then `Error from server (NotFound): services "missing" not found` per missing one on
    stderr, exit 1."""
    import json

    import yaml

    fake_lab(monkeypatch)
    listed = "(services: x/web, y/web, db, kube-dns)"
    table = get("services", "db", "x/missing", "kube-dns", "nope")
    assert table.exit_code == 1, table.output
    assert [line.split()[0] for line in table.stdout.splitlines()] == ["NAME", "db", "kube-dns"]
    assert table.stderr.splitlines() == [
        "(kube-dns: the cluster DNS netlab adds to a lab with Services; not in the topology file)",
        f"netlab: lab g has no service 'missing' in namespace 'x' {listed}",
        f"netlab: lab g has no service 'nope' in any namespace {listed}"]
    # -o json: the document of every `get`, with the ones found; stdout stays valid JSON
    found = get("svc", "x/web", "zz/web", "-o", "json")
    assert found.exit_code == 1
    doc = json.loads(found.stdout)
    assert doc["lab"] == "g" and doc["kind"] == "services"
    assert [(s["namespace"], s["name"]) for s in doc["items"]] == [("x", "web")]
    # the same as when all are found, and what was not found in it too, as stderr says it (it was on stderr alone)
    assert doc["problems"] == [f"lab g has no service 'web' in namespace 'zz' {listed}"]
    assert {**doc, "problems": []} == json.loads(get("svc", "x/web", "-o", "json").stdout)
    assert found.stderr == f"netlab: lab g has no service 'web' in namespace 'zz' {listed}\n"
    as_yaml = get("svc", "x/web", "zz/web", "-o", "yaml")
    assert as_yaml.exit_code == 1 and yaml.safe_load(as_yaml.stdout) == doc
    # none found: the lines alone (no "no services in lab g"); -o json's items empty
    nothing = get("nodes", "n9", "x/n1")
    assert (nothing.exit_code, nothing.stdout) == (1, "")
    assert nothing.stderr.splitlines() == ["netlab: lab g has no node 'n9' (nodes: n1)",
                                           "netlab: lab g has no node 'x/n1' (nodes: n1)"]
    nopod = json.loads(get("pods", "zz", "-o", "json").stdout)
    assert nopod["items"] == [] and nopod["problems"] == ["lab g has no pod 'zz' in any namespace (pods: a, b, kube-dns)"]
    # pods, within -l: the one that does not match is named so
    web = get("pods", "-l", "app=web", "a", "kube-dns")
    assert web.exit_code == 1 and [line.split()[0] for line in web.stdout.splitlines()] == ["NAME", "a"]
    assert web.stderr == ("netlab: lab g has no pod 'kube-dns' in any namespace that matches -l 'app=web' "
                          "(pods that match: a, b)\n")
    # every NAME there: exit 0, nothing on stderr
    everything = get("pods", "a", "y/b")
    assert (everything.exit_code, everything.stderr) == (0, "")


def test_the_wide_nodes_table_names_the_vxlan_device_column_for_any_vni():
    """QA: the column was FLANNEL.1 in a lab whose VNI 42 makes the device flannel.42: VTEP, as `get --help` says."""
    from netlab.cli.get import rows_of

    headers, _ = rows_of("nodes", views.nodes(twins()), wide=True)
    assert headers[-3:] == ["netns", "cni0", "vtep"]
