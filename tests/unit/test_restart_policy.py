"""restartPolicy as the kubelet applies it (workload/policy.py), for plain `up`, `status` and the watcher."""

from __future__ import annotations

import pytest

from netlab.workload.policy import EXITED, FAILED_START, completed, held
from netlab.workload.tasks import COMMAND_CHANGED, SANDBOX_REMADE


def never_asked() -> int | None:
    raise AssertionError("the exit code was asked though the policy does not need it")


@pytest.mark.parametrize("policy,code,kept", [
    ("Always", None, None), ("Never", None, "restartPolicy Never"),
    ("OnFailure", 0, "restartPolicy OnFailure"), ("OnFailure", 1, None),
    ("OnFailure", None, None),  # nobody saw how it exited: treated as a failure, restarted
])
def test_an_exited_container_is_held_as_its_pods_policy_says(policy, code, kept):
    ask = (lambda: code) if policy == "OnFailure" else never_asked
    assert held(policy, EXITED, False, ask) == kept
    assert held(policy, FAILED_START, False, ask) == kept


@pytest.mark.parametrize("policy", ["Always", "OnFailure", "Never"])
def test_a_container_stopped_changed_or_running_elsewhere_is_replaced_whatever_the_policy(policy):
    for why in ("it was stopped", COMMAND_CHANGED):
        assert held(policy, why, False, never_asked) is None
    assert held(policy, EXITED, True, never_asked) is None  # it runs, in a namespace that is not its pod's


@pytest.mark.parametrize("policy,kept", [("Always", None), ("OnFailure", None), ("Never", "restartPolicy Never")])
def test_a_dead_sandbox_is_made_again_for_its_containers_unless_the_pod_never_restarts(policy, kept):
    assert held(policy, SANDBOX_REMADE, True, never_asked) == kept


@pytest.mark.parametrize("policy,code,done", [
    ("Always", 0, False),  # restarted: drift until it runs again
    ("OnFailure", 0, True), ("OnFailure", 1, False), ("OnFailure", None, False),
    ("Never", 0, True), ("Never", 3, False), ("Never", None, False),  # a failure, or not known: said
])
def test_only_a_container_that_completed_and_stays_so_is_done(policy, code, done):
    assert completed(policy, code) is done
