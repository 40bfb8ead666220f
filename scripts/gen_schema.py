#!/usr/bin/env python3
"""Write schema/topology.schema.json, the JSON Schema of a topology file.

Generated from the pydantic models (``Topology.model_json_schema(by_alias=True)``)
so editors (the ``# yaml-language-server: $schema=...`` line at the top of each
file in topologies/) complete and check the same field names netlab accepts.
Output is deterministic (sorted keys), so the committed file can be compared
with a fresh one: ``scripts/gen_schema.py --check`` exits 1 when it is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "schema" / "topology.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def render() -> str:
    """The schema as text: sorted keys, two-space indent, trailing newline."""
    sys.path.insert(0, str(ROOT))
    from netlab.model.topology import Topology

    schema = Topology.model_json_schema(by_alias=True)
    schema["$schema"] = DRAFT
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed schema is out of date")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT, help=f"where to write (default {OUTPUT})")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text("utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date; run scripts/gen_schema.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, "utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
