"""A plugin's result read as libcni reads it (QA q20 #1), and a plugin's words made safe for a terminal (QA q20 #4).

libcni's invoke.ExecPluginWithResult reads a result by the cniVersion the result declares (the config's when it
declares none) and create.Create has a type per version: 0.1.0/0.2.0 (ip4, ip6, dns), 0.3.x/0.4.0 and 1.x
(interfaces, ips, routes, dns); any other version fails the ADD. Fake plugins print what their config tells them.
"""

from __future__ import annotations

import json

import pytest

from netlab.cni.invoke import CallLog, PluginFailed, one_line, read_log
from netlab.cni.runtime import Runtime, RuntimeConf
from netlab.model.cniconf import parse_conflist

SAYS = r'''#!/usr/bin/env python3
import json, os, sys
conf = json.load(sys.stdin)
if os.environ["CNI_COMMAND"] == "ADD":
    print(json.dumps(conf["says"]) if "says" in conf else json.dumps(conf["prevResult"]))
    sys.exit(conf.get("exit", 0))
'''

NEW = {"cniVersion": "1.0.0", "interfaces": [{"name": "veth1"}, {"name": "eth0", "sandbox": "/run/netns/x"}],
       "ips": [{"address": "10.244.0.7/24", "interface": 1}], "routes": [{"dst": "0.0.0.0/0"}], "dns": {}}


@pytest.fixture
def runtime(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    for name in ("says", "next"):
        (d / name).write_text(SAYS)
        (d / name).chmod(0o755)
    return Runtime(str(tmp_path / "cache"), [str(d)], CallLog(str(tmp_path / "calls.jsonl")))


def rt():
    return RuntimeConf(pod="a", container_id="c" * 64, netns="lab-a", ifname="eth0", node_netns=None)


def chain(says, version="1.0.0"):
    return parse_conflist(json.dumps({"cniVersion": version, "name": "n",
                                      "plugins": [{"type": "says", "says": says}, {"type": "next"}]}))


@pytest.mark.parametrize("declared", ["9.9.9", "1.2.0", "0.5.0"])
def test_a_result_of_a_version_libcni_has_no_type_for_fails_the_add_naming_plugin_and_version(runtime, declared):
    with pytest.raises(PluginFailed) as exc:
        runtime.add(chain({**NEW, "cniVersion": declared}), rt())
    assert str(exc.value).startswith(f"pod a: CNI plugin says ADD: its result says cniVersion '{declared}', which "
                                     "libcni has no result type for (0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0)")
    assert runtime.cached_result("n", rt()) is None


def test_a_0_1_0_result_is_read_as_0_1_0_its_1_0_0_fields_lost(runtime, tmp_path):
    said = {**NEW, "cniVersion": "0.1.0", "ip4": {"ip": "10.244.0.9/24", "gateway": "10.244.0.1"}}
    result = runtime.add(chain(said), rt())
    handed = read_log(str(tmp_path / "calls.jsonl"))[1]["stdin"]["prevResult"]
    assert handed == {"cniVersion": "1.0.0", "dns": {}, "interfaces": [], "routes": [],
                      "ips": [{"address": "10.244.0.9/24", "gateway": "10.244.0.1"}]}
    assert result == handed  # the next plugin handed it on: the veth and eth0 of the 1.0.0 fields are gone


@pytest.mark.parametrize("old", ["0.1.0", "0.2.0"])
def test_a_0_x_result_without_ip4_has_no_address_and_a_1_0_0_one_keeps_no_ip4(runtime, old):
    lost = runtime.add(chain({**NEW, "cniVersion": old}), rt())  # QA q20's: 1.0.0 fields labelled 0.1.0
    assert lost == {"cniVersion": "1.0.0", "dns": {}, "interfaces": [], "ips": [], "routes": []}
    got = runtime.add(chain({**NEW, "ip4": {"ip": "10.9.9.9/24"}}), rt())
    assert got["ips"] == NEW["ips"] and "ip4" not in got


def test_a_result_without_cni_version_is_read_in_the_config_s_and_a_0_4_0_one_converted(runtime):
    bare = {k: v for k, v in NEW.items() if k != "cniVersion"}
    assert runtime.add(chain(bare), rt())["ips"] == NEW["ips"]
    old = {**NEW, "cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.244.0.7/24", "interface": 1}]}
    got = runtime.add(chain(old), rt())
    assert got["cniVersion"] == "1.0.0" and got["ips"] == NEW["ips"]


def test_an_error_s_control_bytes_are_escaped_on_its_one_line(runtime):
    said = {"cniVersion": "1.0.0", "code": 7, "msg": "red \x1b[31mALERT\x1b[0m \x1b]0;title\x07 done\x00",
            "details": "tab\there\x9bx"}
    conf = parse_conflist(json.dumps({"cniVersion": "1.0.0", "name": "n",
                                      "plugins": [{"type": "says", "says": said, "exit": 1}]}))
    with pytest.raises(PluginFailed) as exc:
        runtime.add(conf, rt())
    text = str(exc.value)
    assert text == ("pod a: CNI plugin says ADD: failed (exit 1): red \\x1b[31mALERT\\x1b[0m \\x1b]0;title\\x07 done"
                    "\\x00 (tab here\\x9bx) [code 7]")
    assert text.isprintable()


def test_one_line_keeps_printable_text_and_joins_lines():
    assert one_line("  a b \n\n c\x1bd \r\n é ") == "a b | c\\x1bd | é"
