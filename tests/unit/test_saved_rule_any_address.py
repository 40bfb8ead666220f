"""iptables-save prints no ``-s 0.0.0.0/0`` nor ``-d 0.0.0.0/0``: the kernel keeps "any address" as no match at
all (a negated one stays: ``! -s 0.0.0.0/0``). A LoadBalancer Service with ``loadBalancerSourceRanges: [0.0.0.0/0]``
has kube-proxy's ``-A KUBE-FW-... -s 0.0.0.0/0 ... -j KUBE-EXT-...`` and the load balancer's ``-s 0.0.0.0/0 -j
RETURN``; compared as written, status said both rules missing (and an extra one each) right after up."""

from __future__ import annotations

import pytest

from netlab.plan.iptables_save import saved_rule


@pytest.mark.parametrize("written, printed", [
    ('-A KUBE-FW-X -s 0.0.0.0/0 -m comment --comment "default/web loadbalancer IP" -j KUBE-EXT-X',
     '-A KUBE-FW-X -m comment --comment "default/web loadbalancer IP" -j KUBE-EXT-X'),
    ("-A NETLAB-LBFW-X -s 0.0.0.0/0 -j RETURN", "-A NETLAB-LBFW-X -j RETURN"),
    ("-A C -d 0.0.0.0/0 -p tcp --dport 80 -j ACCEPT", "-A C -p tcp -m tcp --dport 80 -j ACCEPT"),
    ("-A C ! -s 0.0.0.0/0 -j ACCEPT", "-A C ! -s 0.0.0.0/0 -j ACCEPT"),  # as iptables-nft-save prints it
    ("-A C -s 10.1.2.3/8 -j ACCEPT", "-A C -s 10.0.0.0/8 -j ACCEPT"),
])
def test_any_address_is_no_match(written, printed):
    assert saved_rule(written) == printed
