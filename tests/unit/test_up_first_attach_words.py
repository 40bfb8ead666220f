"""The first `up` of a CNI lab attaches its pods through the conflist's plugins: their first ADDs, no repair. up
said "3 objects added, changed or repaired" of them (-o json listed them under `fixed` only); it says "3 pods
attached through CNI", and -o json lists them under `attached` too (`fixed` keeps them for one release, as it
does the first starts, docs/json.md). A re-attach (a pod's namespace made anew) stays a repair (no root)."""

from __future__ import annotations

from netlab.api.jsonio import from_json, to_json
from netlab.api.results import UpResult
from netlab.cli.lab import fixed_words

FIRST = ["attached pod web-1 through CNI (10.244.0.2)", "attached pod web-2 through CNI (10.244.1.2)",
         "attached pod web-3 through CNI (10.244.0.3; the topology gives 10.244.0.9: what names the pod follows)",
         "started container web-1/main", "started container web-2/main", "started container web-3/main"]


def test_a_new_cni_labs_first_attachments_are_said_as_such_not_as_repairs():
    assert fixed_words(FIRST) == ["3 containers started", "3 pods attached through CNI"]
    again = ["re-attached pod web-1 through CNI (its network namespace was made anew: ...)"]
    assert fixed_words(again + FIRST[:1]) == ["1 pod attached through CNI", "1 object added, changed or repaired"]


def test_up_json_lists_the_first_attachments_under_attached():
    r = UpResult(lab="l", changed=True, created_netns=(), removed_netns=(), fixed=tuple(FIRST), operations=40,
                 warnings=())
    assert r.attached == tuple(FIRST[:3])
    data = to_json(r)
    assert data["attached"] == FIRST[:3] and data["fixed"] == FIRST and data["started"] == FIRST[3:]
    assert from_json(UpResult, data) == r  # read back: attached is the fields' own
