"""How many namespaces' rule transactions netlab runs at once (kernel/threads.py)."""

from __future__ import annotations

import pytest

from netlab.kernel import threads


@pytest.mark.parametrize("cores, nodes, expected", [
    (2, 1, 1),    # one node: no pool
    (2, 3, 3),    # more nodes than cores: all at once, the scheduler shares the cores
    (2, 20, 8),   # capped, for memory (an nft full sync holds ~50 MB while it parses)
    (16, 20, 16), # a bigger machine: one per core
    (None, 5, 5), # the core count unknown
    (2, 0, 1),
])
def test_rule_transactions_run_all_at_once_up_to_a_cap(monkeypatch, cores, nodes, expected):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: cores)
    assert threads.transaction_workers(nodes) == expected


def test_side_by_side_keeps_the_items_order_and_raises_the_first_error():
    assert list(threads.side_by_side(lambda x: x * 2, [3, 1, 2], 2).items()) == [(3, 6), (1, 2), (2, 4)]

    def fail(x: int) -> int:
        raise ValueError(x)

    with pytest.raises(ValueError):
        threads.side_by_side(fail, [1, 2, 3], 2)
