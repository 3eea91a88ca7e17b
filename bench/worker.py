"""Runs one benchmark in this (fresh) interpreter and prints its result as one JSON object.

Usage: python -m bench.worker NAME '{"option": value}'
"""

from __future__ import annotations

import importlib
import json
import sys

from bench.common import machine, peak_rss_mb


def main() -> None:
    name, options = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    result = importlib.import_module(f"bench.{name}").run(options)
    result = {"benchmark": name, "options": options, **result, "peak_rss_mb": peak_rss_mb(), "machine": machine()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
