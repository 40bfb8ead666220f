"""model and plan stay pure: importing them pulls in no kernel or packet library (no root)."""

import subprocess
import sys


def test_model_and_plan_import_no_kernel_libraries():
    code = (
        "import sys, netlab.model.load, netlab.model.lab, netlab.plan.build, netlab.plan.render;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pyroute2', 'scapy', 'subprocess')];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"model/plan imported: {out}"
