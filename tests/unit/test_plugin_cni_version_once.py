"""The pytest plugin asks each CNI plugin of a lab VERSION once (netlab/pytest_labs.py): it asked them for the
topology's verdict (api/lifecycle.check_conflist: a user's own broken plugin is the test's ERROR), then the doctor's
check of the machine (Debian's plugins missing: a skip) and ``Lab.up_loaded``'s own check_conflist asked them
again, each plugin run as root two or three times before the lab came up. The fake kernel and fake plugins (no
plugin run); the user-visible outcomes, a real run: tests/integration/test_pytest_plugin.py."""

from __future__ import annotations

from collections import Counter

import pytest

from cni_fakes import add_result, cni_topo, cni_world
from netlab import doctor
from netlab.api import lifecycle as api_lifecycle
from netlab.cni import lifecycle
from netlab.feature import ModuleFeature
from netlab.kernel.fake import FakeKernel
from netlab.pytest_labs import _Registry

TOPO = cni_topo("fkvo") + "  - {name: a, node: n1, ip: 10.244.0.2}\n"


@pytest.mark.parametrize("case", ["up", "broken", "machine"])
def test_each_plugin_is_asked_version_once_as_the_plugins_lab_comes_up(tmp_path, monkeypatch, case):
    """up: the lab comes up; broken: a plugin of the user's own (bin/chain) fails VERSION, the test's error, as
    validate says it; machine: one of Debian's (tuning) is missing where the machine keeps them, a skip."""
    asked: Counter[str] = Counter()

    def plugins(log, *, pod, network, plugin_path, command, conf, env, node_netns, timeout=None, program=None):
        if command == "VERSION":
            asked[plugin_path.rsplit("/", 1)[-1]] += 1
            return None if case == "broken" and plugin_path.endswith("/chain") else \
                {"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}
        return add_result(pod, env) if command == "ADD" else None

    kernel = FakeKernel()
    kernel.close = lambda: None  # type: ignore[method-assign]
    monkeypatch.setattr(api_lifecycle, "live_kernel", lambda: kernel)
    monkeypatch.setattr(api_lifecycle, "default_features", lambda: [ModuleFeature(lifecycle)])
    monkeypatch.setattr(doctor, "needs", lambda lab: {"cni-plugins"})  # the machine's other checks: not this test's
    (tmp_path / "machine").mkdir(mode=0o755)  # the folder the machine keeps Debian's plugins in: none there
    monkeypatch.setenv("NETLAB_CNI_PATH", str(tmp_path / "machine"))
    chain = [{"type": "chain"}] + ([{"type": "tuning"}] if case == "machine" else [])
    with cni_world(tmp_path, monkeypatch, TOPO, plugins, {"cniVersion": "1.0.0", "name": "net", "plugins": chain}):
        registry = _Registry(None)  # type: ignore[arg-type]
        if case == "broken":
            with pytest.raises(pytest.fail.Exception, match=r"plugin chain: VERSION failed"):
                registry.bring_up(str(tmp_path / "t.yaml"), None, 60.0)
        elif case == "machine":
            with pytest.raises(pytest.skip.Exception, match=r"this machine cannot run the lab .*'tuning' not found"):
                registry.bring_up(str(tmp_path / "t.yaml"), None, 60.0)
        else:
            lab = registry.bring_up(str(tmp_path / "t.yaml"), None, 60.0)
            assert lab.name in registry.live
    assert asked == {"loopback": 1, "chain": 1}, asked
