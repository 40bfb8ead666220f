"""QA 61 8: a CniCall's stdin and result are deep-frozen (JSON arrays tuples), which the README did not say; it
says so now, and names netlab.api.to_json to get plain JSON back. What it says, checked."""

from __future__ import annotations

import json

from netlab.api import to_json
from netlab.api.frozen import freeze
from netlab.api.results_cni import CniCall


def test_stdin_and_result_are_read_only_with_tuples_and_to_json_thaws_them():
    conf = {"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge"}]}
    call = CniCall("a", "n", "bridge", "ADD", freeze({"CNI_IFNAME": "eth0"}), freeze(conf), "lab-n1",
                   json.dumps({"ips": [{"address": "10.244.0.2/24"}]}), "", 0, 0.01, 1.0)
    assert isinstance(call.stdin["plugins"], tuple) and call.stdin["plugins"][0]["type"] == "bridge"
    assert call.result is not None and call.result["ips"] == ({"address": "10.244.0.2/24"},)
    plain = to_json(call.stdin)
    assert plain == conf and type(plain) is dict and type(plain["plugins"]) is list
