"""`netlab trace SRC 192.168.122.2:18080` (curl's form) was refused as no pod, node or host of that name: the
refusal now says trace takes the port as --port, with the command to type (QA qa56d)."""

from __future__ import annotations

import pytest

from netlab.errors import UsageError, netlab_command
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.trace.targets import resolve_target, resolve_source

TOPO = ("name: tp\nnodes: [{name: n1, ip: 192.168.122.2}, {name: n2}]\n"
        "pods:\n  - {name: a, node: n1}\n  - {name: b, node: n2}\n")


@pytest.mark.parametrize("spec, host", [("192.168.122.2:18080", "192.168.122.2"), ("n1:18080", "n1")])
def test_an_address_with_a_port_is_told_to_use_port(tmp_path, spec, host):
    path = tmp_path / "t.yaml"
    path.write_text(TOPO)
    lab = resolve(load_topology(str(path)))
    with pytest.raises(UsageError) as err:
        resolve_target(lab, spec, None, None, resolve_source(lab, "b"))
    assert str(err.value) == (f"lab tp: {spec!r} names a port in the destination; trace takes it as --port: "
                              f"{netlab_command(f'trace --lab tp b {host} --port 18080')}")

