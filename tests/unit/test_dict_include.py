"""A dict topology cannot ``include:`` manifests: it has no folder for the patterns (QA qt #3).

The error said ``<dict>: include: include: needs a topology file (...)``: the field twice, and nothing of what to
do. It says what to do now (the policies under networkPolicies:, or a file beside the manifests), in one line, and
the README says it where it says a dict is shaped like the YAML. Nothing is read, absolute pattern or not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab import api
from netlab.errors import TopologyError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("pattern", ["policies/*.yaml", "/etc/passwd"])
def test_a_dicts_include_says_what_to_do_in_one_line(pattern):
    with pytest.raises(TopologyError) as err:
        api.load({"name": "x", "nodes": [{"name": "n1"}], "include": [pattern]})
    assert str(err.value) == ("<dict>: include: needs a topology file: its patterns are relative to the file's "
                              "folder, and this topology has none; write the manifests' policies under "
                              "networkPolicies: (and namespaces:), or give a topology file beside the manifests")
    assert err.value.exit_code == 2


def test_the_readme_says_it_where_it_says_a_dict_is_shaped_like_the_yaml():
    text = " ".join((ROOT / "README.md").read_text().split())
    assert ("a dict shaped like the YAML (but for `include:`: a dict has no folder for its patterns; write the "
            "policies under `networkPolicies:`)") in text
