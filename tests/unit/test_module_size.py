"""netlab's modules stay under 500 lines, the project's rule: a larger one is split by what it holds, as
api/watch.py was (509 lines: its restart decisions went to api/watch_restart.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 500


def test_every_netlab_module_is_under_500_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in (ROOT / "netlab").rglob("*.py")}
    assert len(sizes) > 100
    assert {name: n for name, n in sizes.items() if n >= LIMIT} == {}
