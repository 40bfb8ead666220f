"""A feature the lab's state records nothing of is not loaded to stop it (netlab/feature.py, RecordedFeature).

Every lab's state has an ``impair`` record, ``{"shaped": {}, "runtime": {}}`` until an interface is shaped:
its parts empty, it records nothing to undo, so a ``down`` does not load netlab.impair.lifecycle (and the
topology's models and pydantic with it). A record with a shaped interface loads it, as before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STOP = """import sys
from types import SimpleNamespace
from netlab.features import default_features
state = SimpleNamespace(lab="fk", extra={{"impair": {record}}})
impair = [f for f in default_features() if f.name == "impair"][0]
print(impair.stop_early(state), impair.stop(state, ["fk-a"], everything=True), impair.stop_taken(state, ["fk-a"]),
      impair.roll_back(state), "netlab.impair.lifecycle" in sys.modules)
"""


def stopped(record: str) -> str:
    proc = subprocess.run([sys.executable, "-c", STOP.format(record=record)], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_an_impair_record_of_empty_parts_is_stopped_without_loading_the_feature():
    assert stopped('{"shaped": {}, "runtime": {}}') == "None [] [] [] False"


def test_an_impair_record_with_a_shaped_interface_loads_the_feature_to_stop_it():
    assert stopped('{"shaped": {"fk-a": ["eth0"]}, "runtime": {}}') == "None [] [] [] True"
