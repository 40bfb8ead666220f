"""Property: whatever the input, the loader returns a valid topology or raises TopologyError.

Inputs are valid topologies (the built-in default and topologies/*.yaml)
mutated as data (keys deleted, values replaced by random ones of other types,
unknown keys added, lists duplicated) or as text (YAML punctuation inserted,
lines dropped, swapped or repeated), plus plain random text. Anything the
loader accepts must also resolve (addresses, names) without error: validation
is what stands between a file and the kernel.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netlab.errors import TopologyError
from netlab.model import naming
from netlab.model.lab import resolve
from netlab.model.load import load_topology, parse_yaml
from netlab.model.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
SEED_FILES = [ROOT / "netlab" / "data" / "default.yaml"] + sorted((ROOT / "topologies").glob("*.yaml"))
SEED_TEXTS = [p.read_text("utf-8") for p in SEED_FILES]
SEED_DATA = [yaml.safe_load(t) for t in SEED_TEXTS]

# libyaml's emitter when PyYAML has it: the same text as yaml.safe_dump, five times faster.
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = ["name", "nodes", "pods", "services", "cluster", "network", "internet", "expect", "ip", "podCIDR",
        "serviceCIDR", "nodeMask", "mode", "vxlan", "vni", "port", "underlay", "cidr", "mtu", "node", "labels",
        "containers", "command", "ports", "containerPort", "protocol", "selector", "type", "clusterIP", "nodePort",
        "targetPort", "loadBalancerIP", "gateway", "hosts", "from", "to", "proto", "reach", "pod_cidr", "bogus"]
TRICKY = ["no", "yes", "on", "off", "~", "null", "010", "0x1F", "1:30", "1_000", "a/b", "..", "a\nb", "50%", "it's",
          "café", "x" * 70, "", " ", "-", "underlay", "lb", "minikube", "fedora-1", "10.244.0.0/16", "10.244.0.1/16",
          "10.244.0.0", "10.244.0.300", "0.0.0.0/0", "192.168.122.1", "192.168.122.0/30", "203.0.113.1",
          "10.96.0.10", "TCP", "UDP", "tcp", "vxlan", "host-gw", "LoadBalancer", "NodePort", "ClientIP", "icmp",
          "\x00", "\u202e", "\ud7ff", "!!python/object", "&a", "*a"]

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.sampled_from([0, 1, 24, 28, 29, 1279, 1500, 8472, 9001, 30000, 32768, 65535, 65536, 16777215, 10_000_000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(TRICKY),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=4)),
    max_leaves=12,
)


def _containers(doc) -> list:
    """Every (container, key) in ``doc``: places a mutation can touch."""
    out, todo = [], [doc]
    while todo:
        node = todo.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            out.append((node, key))
            if isinstance(value, (dict, list)):
                todo.append(value)
    return out


def _mutate(doc, data) -> object:
    places = _containers(doc) if isinstance(doc, (dict, list)) else []
    op = data.draw(st.sampled_from(["delete", "replace", "add-key", "duplicate", "wrap", "tricky"]))
    if not places:
        return data.draw(values)
    node, key = data.draw(st.sampled_from(places))
    if op == "delete":
        del node[key]
    elif op == "replace":
        node[key] = data.draw(values)
    elif op == "tricky":
        node[key] = data.draw(st.sampled_from(TRICKY))
    elif op == "wrap":
        node[key] = [node[key]]
    elif op == "duplicate" and isinstance(node[key], list) and node[key]:
        node[key].append(copy.deepcopy(node[key][0]))
    elif isinstance(node, dict):
        node[data.draw(st.sampled_from(KEYS))] = data.draw(values)
    else:
        node.append(data.draw(values))
    return doc


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("property")


def _check(text: str, workdir: Path) -> None:
    """The property itself, for one input text."""
    try:
        src = parse_yaml(text, "t.yaml")
        assert isinstance(src.data, dict)
    except TopologyError as exc:
        _check_error(exc)
    path = workdir / "t.yaml"
    path.write_text(text, "utf-8", errors="surrogatepass")
    try:
        topo = load_topology(str(path))
    except TopologyError as exc:
        _check_error(exc)
        return
    assert isinstance(topo, Topology)
    lab = resolve(topo)  # anything accepted must be buildable
    for netns in lab.netns_names():
        naming.check_netns(netns)
    assert len({p.ip for p in lab.pods}) == len(lab.pods)
    assert len({n.ip for n in lab.nodes}) == len(lab.nodes)


def _check_error(exc: TopologyError) -> None:
    assert exc.problems
    for problem in exc.problems:
        line = str(problem)
        assert "\n" not in line and "\r" not in line, repr(line)
        assert problem.message and len(problem.message) < 400, line


@SETTINGS
@given(data=st.data())
def test_mutated_topologies(workdir, data):
    doc = copy.deepcopy(data.draw(st.sampled_from(SEED_DATA)))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        doc = _mutate(doc, data)
    _check(yaml.dump(doc, Dumper=DUMPER, allow_unicode=data.draw(st.booleans())), workdir)


PUNCTUATION = list(":-[]{}&*!|>'\"#%@`,?~\t\n ") + ["\n  ", ": ", "- ", "---\n", "...\n", "\ufeff", "\x07", "\\"]


@SETTINGS
@given(data=st.data())
def test_mangled_yaml_text(workdir, data):
    lines = data.draw(st.sampled_from(SEED_TEXTS)).splitlines(keepends=True)
    for _ in range(data.draw(st.integers(min_value=1, max_value=5))):
        op = data.draw(st.sampled_from(["insert", "drop-line", "swap-lines", "repeat-line", "cut"]))
        i = data.draw(st.integers(min_value=0, max_value=max(len(lines) - 1, 0)))
        if not lines:
            lines = [data.draw(st.text(max_size=20))]
        elif op == "insert":
            pos = data.draw(st.integers(min_value=0, max_value=len(lines[i])))
            ins = data.draw(st.one_of(st.sampled_from(PUNCTUATION), st.text(max_size=5), st.sampled_from(TRICKY)))
            lines[i] = lines[i][:pos] + ins + lines[i][pos:]
        elif op == "drop-line":
            del lines[i]
        elif op == "swap-lines":
            j = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "repeat-line":
            lines.insert(i, lines[i])
        else:
            pos = data.draw(st.integers(min_value=0, max_value=len(lines[i])))
            lines[i] = lines[i][:pos]
    _check("".join(lines), workdir)


@SETTINGS
@given(text=st.one_of(st.text(max_size=200),
                      st.lists(st.sampled_from(PUNCTUATION + list("abcxyz019")), max_size=80).map("".join)))
def test_random_text(workdir, text):
    _check(text, workdir)


@pytest.mark.parametrize("text", SEED_TEXTS, ids=[p.name for p in SEED_FILES])
def test_seeds_are_accepted(workdir, text):
    _check(text, workdir)


def test_the_property_can_fail(workdir, monkeypatch):
    """A loader that leaks a foreign exception is caught by the check."""
    import netlab.model.load as load

    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(load, "validate_source", broken)
    with pytest.raises(KeyError):
        _check("name: x\nnodes: [{name: a}]\n", workdir)
