"""Break scenarios on a lab whose pods a user's conflist attaches: refused (exit 2) when they cannot apply,
never picked by the quiz, and every other one builds its change from the plan."""

from __future__ import annotations

import pytest

from netlab.breaks import catalogue, quiz
from netlab.breaks.changes import CHANGES
from netlab.breaks.run import check
from netlab.errors import UsageError
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.build import build_plan

CONFLIST = '{"cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "bash-bridge", "bridge": "br9"}]}'


def _lab(tmp_path, mode: str, cni: str):
    (tmp_path / "net.conflist").write_text(CONFLIST)
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "t.yaml").write_text(f"""name: fxu
network: {{mode: {mode}, cni: {cni}}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web-1, node: n1, labels: {{app: web}}}}
  - {{name: web-2, node: n2, labels: {{app: web}}}}
  - {{name: cl, node: n1}}
services:
  - {{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
""")
    return resolve(load_topology(str(tmp_path / "t.yaml")))


CNI_CONFLIST = "{conflist: net.conflist, binDir: bin}"


@pytest.mark.parametrize("mode", ["vxlan", "host-gw"])
def test_bridge_port_down_is_refused_in_one_line_on_a_conflist_lab(tmp_path, mode):
    lab = _lab(tmp_path, mode, CNI_CONFLIST)
    s = catalogue.scenario("bridge-port-down")
    why = catalogue.why_not(s, lab)
    assert why is not None and "conflist" in why and "\n" not in why
    with pytest.raises(UsageError) as exc:
        check("bridge-port-down", lab, "web-2")
    assert exc.value.exit_code == 2


@pytest.mark.parametrize("mode", ["vxlan", "host-gw"])
def test_the_quiz_never_picks_what_cannot_apply_and_every_candidate_builds(tmp_path, mode):
    lab = _lab(tmp_path, mode, CNI_CONFLIST)
    names = [s.name for s in quiz.candidates(lab)]
    assert "bridge-port-down" not in names and names
    assert all(quiz.pick(lab, seed).name != "bridge-port-down" for seed in range(60))
    plan = build_plan(lab)
    for s in quiz.candidates(lab):  # each change finds what it changes in the plan (no LookupError)
        assert CHANGES[s.name](lab, plan, catalogue.resolve_target(s, lab, None)), s.name


@pytest.mark.parametrize("cni", ["builtin", "reference"])
def test_bridge_port_down_still_applies_where_netlab_plans_the_port(tmp_path, cni):
    lab = _lab(tmp_path, "vxlan", cni)
    if cni == "reference":  # the reference plugins' pods are in the plan once attached
        from netlab.model.lab import CniAttachment
        lab = lab.with_attachments({p.name: CniAttachment(ip=p.ip, host_veth=f"veth{i:08x}")
                                    for i, p in enumerate(lab.pods)})
    s = catalogue.scenario("bridge-port-down")
    assert catalogue.why_not(s, lab) is None
    assert CHANGES[s.name](lab, build_plan(lab), catalogue.resolve_target(s, lab, "web-2"))
