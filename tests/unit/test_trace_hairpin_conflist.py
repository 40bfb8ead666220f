"""trace's fix for a hairpin off on a bridge port of a user's conflist (QA q57 #2): no `up` claim, hairpinMode
named; netlab's own ports (builtin, reference) keep `up` as the repair."""

from __future__ import annotations

from types import SimpleNamespace

from netlab.trace.faults import hairpin_off, up_repairs


class K:
    def links(self, ns):
        return {"veth1": SimpleNamespace(hairpin=False)}


SVC = SimpleNamespace(name="default/web", endpoints=[SimpleNamespace(ip="10.244.0.2")])


def test_netlabs_own_port_is_repaired_by_up():
    why, fix = hairpin_off(K(), "l-n1", "veth1", "10.244.0.2", SVC)
    assert fix == "bridge -n l-n1 link set dev veth1 hairpin on" and up_repairs(fix)
    assert why.endswith("(the bridge plugin's hairpinMode)")


def test_a_conflists_port_without_hairpin_mode_names_it_and_the_reconfigure():
    lab = SimpleNamespace(conflist="/x/my.conflist", hairpin_mode=False)
    why, fix = hairpin_off(K(), "l-n1", "veth1", "10.244.0.2", SVC, lab,
                           lambda: "sudo netlab up -t t.yaml --reconfigure")
    assert not up_repairs(fix)
    assert fix.startswith("bridge -n l-n1 link set dev veth1 hairpin on   (until its pod is attached again; ")
    assert '"hairpinMode": true in the bridge plugin of /x/my.conflist, then sudo netlab up -t t.yaml --reconfigure' \
        in fix
    assert 'has no "hairpinMode": true' in why


def test_a_conflists_port_turned_off_since_its_add_is_no_ups_either():
    lab = SimpleNamespace(conflist="/x/my.conflist", hairpin_mode=True)
    why, fix = hairpin_off(K(), "l-n1", "veth1", "10.244.0.2", SVC, lab, lambda: "never asked")
    assert not up_repairs(fix) and "never asked" not in fix and "at the pod's ADD" in why
