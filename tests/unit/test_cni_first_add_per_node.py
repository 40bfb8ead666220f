"""A CNI lab's pods are ADDed side by side, but one pod of each node first, alone on its node: the bridge plugin
makes the node's bridge at the first ADD there and its MAC settles during that ADD; a second ADD at the same time
could read another MAC into its result, and every later CHECK failed ("Bridge interface cni0 Mac doesn't match",
seen in CI). Through fake plugins (each ADD records when it began and ended) and a fake kernel."""

from __future__ import annotations

import threading
import time

from cni_fakes import add_result, cni_topo, cni_world, lab_of, up
from netlab.cni import attach
from netlab.kernel.fake import FakeKernel

TOPO = cni_topo("fkfa", nodes=2) + "".join(f"  - {{name: p{i}, node: n{1 + i % 2}}}\n" for i in range(6))


class Timed:
    """Stands in for invoke.exec_plugin: each ADD's (pod, start, end), a few ms long so that overlaps show."""

    def __init__(self):
        self.adds: list[tuple[str, float, float]] = []
        self.lock = threading.Lock()

    def __call__(self, log, *, pod, network, plugin_path, command, conf, env, node_netns, timeout=None, program=None):
        start = time.monotonic()
        time.sleep(0.01)
        with self.lock:
            if command == "ADD":
                self.adds.append((pod, start, time.monotonic()))
        return add_result(pod, env) if command == "ADD" else None


def test_the_first_pod_of_each_node_is_added_alone_there(tmp_path, monkeypatch):
    plugins = Timed()
    monkeypatch.setattr(attach, "WORKERS", 8)  # more than the pods: each pod's ADD could start at once
    with cni_world(tmp_path, monkeypatch, TOPO, plugins):
        up(lab_of(tmp_path), FakeKernel())
    node = {f"p{i}": f"n{1 + i % 2}" for i in range(6)}
    for n in ("n1", "n2"):
        adds = [a for a in plugins.adds if node[a[0]] == n]
        first = min(adds, key=lambda a: a[1])[0]
        first_end = max(end for pod, _, end in adds if pod == first)
        assert all(start >= first_end for pod, start, _ in adds if pod != first), adds
