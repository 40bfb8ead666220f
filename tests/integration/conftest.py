"""Root integration fixtures: unique labs that always come down, and a host that never changes."""

from __future__ import annotations

import pytest

from helpers import diff_snapshots, dump_lab, host_snapshot, lab_namespaces, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True)
def host_untouched():
    """Every integration test: the host's namespace is byte-identical before and after."""
    before = host_snapshot()
    yield
    changes = diff_snapshots(before, host_snapshot())
    assert not changes, "the host's network namespace changed:\n" + "\n".join(changes[:20])


class Labs:
    """Brings labs up for a test and always takes them down."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.names: list[str] = []

    def name(self, prefix: str = "t") -> str:
        lab = unique_lab(prefix)
        self.names.append(lab)
        return lab

    def up(self, text: str, file: str = "topo.yaml", *args: str, check: bool = True, env: dict | None = None):
        path = write_topology(self.tmp_path, text, file)
        return path, netlab("up", "-t", path, *args, check=check, env=env)

    def teardown(self, failed: bool) -> None:
        for lab in self.names:
            if failed:
                print(dump_lab(lab))
            netlab("down", "--lab", lab, check=False)
            left = lab_namespaces(lab)
            assert not left, f"lab {lab} left namespaces: {left}"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def labs(tmp_path, request):
    labs = Labs(tmp_path)
    yield labs
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    labs.teardown(failed)
