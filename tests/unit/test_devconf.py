"""Which IPv4 all/default settings a lab sets back to the kernel's values (plan/sysctls.py), without root."""

from __future__ import annotations

from netlab.plan.sysctls import DEVCONF_SYSCTLS, KERNEL_DEVCONF, restore_sysctls, to_restore

KERNEL = {name: value for key, values in KERNEL_DEVCONF.items()
          for name, value in zip((f"net.ipv4.conf.all.{key}", f"net.ipv4.conf.default.{key}"), values)}


def test_a_new_namespace_at_the_kernels_values_sets_nothing_back():
    assert set(KERNEL) | {"net.ipv4.ip_forward"} == set(DEVCONF_SYSCTLS)  # and whether it forwards
    assert to_restore(KERNEL) == ()
    assert restore_sysctls(()) == ()


def test_a_setting_differing_in_all_or_in_default_is_set_back_in_both():
    found = dict(KERNEL, **{"net.ipv4.conf.default.proxy_arp": "1", "net.ipv4.conf.all.route_localnet": "1"})
    assert to_restore(found) == ("proxy_arp", "route_localnet")  # KERNEL_DEVCONF's order
    assert restore_sysctls(("proxy_arp", "accept_source_route")) == (
        ("net.ipv4.conf.all.proxy_arp", "0"), ("net.ipv4.conf.default.proxy_arp", "0"),
        ("net.ipv4.conf.all.accept_source_route", "0"), ("net.ipv4.conf.default.accept_source_route", "1"))


def test_a_setting_this_kernel_lacks_is_left_alone_and_a_recorded_one_is_kept():
    found = dict(KERNEL)
    del found["net.ipv4.conf.all.arp_evict_nocarrier"]  # before Linux 5.16
    found["net.ipv4.conf.default.arp_evict_nocarrier"] = "0"
    assert to_restore(found) == ()
    # Recorded at an earlier up: the lab's older namespaces have it set back, and status keeps checking it.
    assert to_restore(KERNEL, recorded=("send_redirects",)) == ("send_redirects",)
    assert to_restore(dict(KERNEL, **{"net.ipv4.conf.all.log_martians": "1"}), ("send_redirects",)) == (
        "log_martians", "send_redirects")
