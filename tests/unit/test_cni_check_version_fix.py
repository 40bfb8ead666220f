"""QA 61 6: Debian's plugins too old for a list's cniVersion: the fix said "a containernetworking-plugins whose
plugins speak cniVersion 1.1.0 (Debian 12's 1.1.1 does)", and Debian 12's 1.1.1 speaks up to 1.0.0. It says what
the plugins here answered VERSION instead."""

from __future__ import annotations

from netlab.cni.check import Answer, _fix
from netlab.cni.conf import CNI_BIN_DIR

SPOKEN = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0")  # Debian 12's 1.1.1, as its bridge answers


def test_the_fix_for_plugins_too_old_says_what_they_speak():
    bad = [Answer(kind, "1.1.0", f"{CNI_BIN_DIR}/{kind}", SPOKEN) for kind in ("bridge", "host-local")]
    fix = _fix(bad, [CNI_BIN_DIR])
    assert fix.startswith("a containernetworking-plugins whose plugins speak cniVersion 1.1.0 (those here speak up "
                          "to 1.0.0); "), fix
    older = [bad[0], Answer("host-local", "1.1.0", f"{CNI_BIN_DIR}/host-local", ("0.3.1", "0.4.0", "0.10.0"))]
    assert "(those here speak up to 0.4.0)" in _fix(older, [CNI_BIN_DIR])  # every one of them: 0.10.0 is not


def test_the_fix_for_plugins_too_old_says_which_labs_need_them_and_what_runs_without():
    """QA mf63 defect 7: containernetworking-plugins 0.9.x (Ubuntu 22.04, Debian 11) speak up to 0.4.0, and apt has
    no newer there: the fix asked for plugins speaking 1.0.0 alone. Only labs that run them need it."""
    old = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0")
    bad = [Answer(kind, "1.0.0", f"{CNI_BIN_DIR}/{kind}", old) for kind in ("bridge", "host-local")]
    assert _fix(bad, [CNI_BIN_DIR]) == (
        "a containernetworking-plugins whose plugins speak cniVersion 1.0.0 (those here speak up to 0.4.0); only labs "
        "that run these plugins need it (network.cni: reference, or a conflist of cniVersion 1.0.0): the default "
        "network.cni: builtin runs without them, and a conflist of your own at cniVersion 0.4.0 runs with those here")
