"""The lab's CNI call log from Python (QA: a plugin author had `netlab cni log` only): ``Lab.cni_log`` returns it
typed, as ``netlab cni log -o json`` shows it, and the pytest plugin's dump of a failed test's lab holds it
(``cni-calls.json``). Fake plugins and kernel (no root); the real plugins: tests/integration/test_cni_host_writes.py.
"""

from __future__ import annotations

import json

import pytest

from cni_fakes import VethPlugins, cni_topo, kernel_lab_world, up
from netlab.api import Lab, results as R, to_json
from netlab.api.lab import Lab as ApiLab
from netlab.cni import lifecycle
from netlab.cni.invoke import Call, call_json, read_log
from netlab.errors import UsageError
from netlab.kernel.base import Op
from netlab.lab import teardown
from netlab.plan.resources import Veth
from netlab.pytest_artifacts import snapshot

TOPO = cni_topo("fkcl") + """\
  - {name: web-1, node: n1, ip: 10.244.0.2}
  - {name: web-2, node: n1, ip: 10.244.0.3}
"""


class Plugins(VethPlugins):
    """A veth per pod; every call recorded in the lab's log, as invoke.exec_plugin records it."""

    def __call__(self, log, *, pod, network, plugin_path, command, conf, env, node_netns, timeout=None, program=None):
        out = super().__call__(log, pod=pod, network=network, plugin_path=plugin_path, command=command, conf=conf,
                               env=env, node_netns=node_netns)
        log.record(Call(pod=pod, network=network, plugin=plugin_path.rsplit("/", 1)[-1], command=command,
                        env=dict(env), stdin=conf, runs_in=node_netns,
                        stdout="" if out is None else json.dumps(out), exit_code=0, duration=0.25))
        return out

    def add(self, pod, ip, env, *, node_netns, netns, host):
        self.kernel.apply([Op("add", Veth(netns=node_netns, name=host, mtu=1500, mac="02:00:00:00:01:0" + pod[-1],
                                          peer_netns=netns, peer_name="eth0", peer_mac="02:00:00:00:02:0" + pod[-1]))])
        return {"cniVersion": "1.0.0", "interfaces": [{"name": host}, {"name": "eth0", "sandbox": env["CNI_NETNS"]}],
                "ips": [{"address": f"{ip}/24", "interface": 1}]}


world = kernel_lab_world(TOPO, Plugins)


def test_cni_log_gives_the_labs_calls_typed_as_the_cli_shows_them(world):
    lab, k = world
    up(lab, k)
    log = Lab(lab.name).cni_log()
    assert isinstance(log, R.CniLog) and log.lab == lab.name and log.pod is None
    logged = read_log(lifecycle.log_path(lab.name))
    # `netlab cni log -o json`'s document: the log's calls, its time as elapsed_s (duration beside it, deprecated)
    assert to_json(log) == {"lab": lab.name, "pod": None, "calls": [call_json(c) for c in logged]}
    # the pods are attached at once: each pod's calls in its chain's order
    for pod in ("web-1", "web-2"):
        assert [(c.plugin, c.command) for c in log.calls if c.pod == pod] == [("loopback", "ADD"), ("chain", "ADD")]
    add = next(c for c in log.calls if c.pod == "web-1" and c.plugin == "chain")
    assert add.ok and add.elapsed_s == 0.25 and add.env["CNI_COMMAND"] == "ADD" and add.stdin["name"] == "net"
    assert add.result is not None and add.result["ips"][0]["address"] == "10.244.0.2/24"  # its stdout, read
    assert all(c.pod == "web-2" for c in Lab(lab.name).cni_log("web-2").calls)
    assert Lab(lab.name).cni_log("web-2").pod == "web-2"
    with pytest.raises(UsageError, match=r"has no pod 'zz', and its CNI log holds no call for one "
                                         r"\(pods: web-1, web-2\)"):
        Lab(lab.name).cni_log("zz")
    with pytest.raises(UsageError, match="lab.cni_log: pod must be a string"):
        Lab(lab.name).cni_log(3)  # type: ignore[arg-type]
    teardown.down(lab.name, k, [])


def test_a_failed_tests_dump_holds_a_cni_labs_call_log(world):
    lab, k = world
    up(lab, k)
    files = snapshot(ApiLab(lab.name), [], [])
    assert files["cni-calls.json"] == to_json(Lab(lab.name).cni_log())
    # read after status.json: the ADDs of up, then the CHECKs status ran
    assert [c["command"] for c in files["cni-calls.json"]["calls"]] == ["ADD"] * 4 + ["CHECK"] * 4
    teardown.down(lab.name, k, [])


def test_a_builtin_lab_has_no_cni_log_and_its_dump_none(state_root):
    from netlab.kernel.fake import FakeKernel
    from netlab.lab.up import up as lab_up
    from netlab.model.lab import resolve
    from netlab.model.load import validate_source
    from netlab.model.yamlsource import Source

    topo = validate_source(Source(file="<dict>", data={"name": "fkcb", "nodes": [{"name": "n1"}]}, lines={}, raw={}))
    k = FakeKernel()
    lab_up(resolve(topo), k)
    with pytest.raises(UsageError, match=r"lab fkcb attaches pods with netlab's builtin wiring \(network.cni: "
                                         r"builtin\); no CNI plugin was called"):
        Lab("fkcb").cni_log()
    assert "cni-calls.json" not in snapshot(ApiLab("fkcb"), [], [])
    teardown.down("fkcb", k, [])


def test_the_readmes_cni_log_example_runs(world, capsys):
    """The README's example of Lab.cni_log, run against this lab. It is written for examples/cni/bash-bridge's lab
    (it filtered on a plugin "chain", which no shipped example has: QA docs58 3), whose plugin this fake lab's
    stands in for (named "chain" here); the real lab runs it as it stands (tests/integration/test_cni.py)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (example,) = re.findall(r"What a plugin author checks\n.*?\n\n```python\n(.*?)^```$", readme, re.S | re.M)
    conflist = json.loads((Path(__file__).resolve().parents[2] / "examples/cni/bash-bridge/bash-bridge.conflist")
                          .read_text())
    assert f'c.plugin == "{conflist["plugins"][-1]["type"]}"' in example  # the shipped example's plugin
    example = example.replace('c.plugin == "bash-bridge"', 'c.plugin == "chain"')
    lab, k = world
    up(lab, k)
    exec(compile(example, "README.md", "exec"), {"lab": Lab(lab.name)})
    assert capsys.readouterr().out.splitlines() == ["loopback ADD lo 0 0.250s", "chain ADD eth0 0 0.250s",
                                                    "net ['10.244.0.2/24']"]
    teardown.down(lab.name, k, [])
