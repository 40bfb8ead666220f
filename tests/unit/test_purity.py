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


def test_no_module_of_netlab_needs_pyroute2():
    """pyroute2 is only the tests' reference encoder (pyproject.toml's test extra): every module of netlab
    imports with it unimportable, as on a machine that installed netlab without the tests."""
    code = (
        "import sys, pkgutil, importlib, netlab; sys.modules['pyroute2'] = None;"
        "names = [m.name for m in pkgutil.walk_packages(netlab.__path__, 'netlab.')"
        " if not m.name.endswith('__main__')];"
        "[importlib.import_module(n) for n in names];"
        "print(len(names))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout) > 100  # every module was imported
