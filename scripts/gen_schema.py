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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "schema" / "topology.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def render() -> str:
    """The schema as text: sorted keys, two-space indent, trailing newline."""
    sys.path.insert(0, str(ROOT))
    from netlab.model.topology import Topology

    schema = keys_checked(Topology.model_json_schema(by_alias=True))
    schema["$schema"] = DRAFT
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def keys_checked(node: Any) -> Any:
    """Every mapping's key pattern as its propertyNames' (pydantic writes a ``dict[Key, Value]`` as
    ``patternProperties: {PATTERN: VALUE}``, which lets any key that misses the pattern through unchecked, where
    netlab refuses it: labels, selectors, matchLabels, impair), its values as additionalProperties."""
    if isinstance(node, list):
        return [keys_checked(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: keys_checked(value) for key, value in node.items()}
    patterns = out.get("patternProperties")
    if isinstance(patterns, dict) and len(patterns) == 1 and "additionalProperties" not in out:
        ((pattern, value),) = patterns.items()
        del out["patternProperties"]
        out["propertyNames"] = {**out.get("propertyNames", {}), "pattern": pattern}
        out["additionalProperties"] = value
    return out


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
