"""status's reason for leaving a chain without CHECK whose pod differs from its cached result right after its own
fresh ADD (QA cnf63 #6): it advised giving the conflist disableCheck, "which compares the pod with the plugins' cached
result instead": the very comparison that failed (a 0.3.1 chain has no CHECK to turn off). Pure."""

from __future__ import annotations

from netlab.cni.changed import Changed
from netlab.feature import FRESH_ADD_FAILS
from netlab.workload.policy import up_leaves


def test_a_chain_without_check_is_not_told_to_turn_check_off():
    for no_check in ("cniVersion 0.3.1 has no CHECK", "its conflist sets disableCheck"):
        line = Changed(False, f"its eth0 has no route to 10.244.0.0/16 ({no_check})").drift_line("a")
        why = up_leaves(line + FRESH_ADD_FAILS)
        assert why is not None and "disableCheck\": true" not in why and "cached result instead" not in why, why
        assert "CHECK fails" not in why, why  # no CHECK failed: netlab's comparison with the result did
        assert "its plugins' result says what they did not make" in why and "up --reconfigure" in why, why
