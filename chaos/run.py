"""Run the crash harness: `python -m chaos.run [--flow NAME …] [--every N]` (see chaos/__init__.py).

Exits non-zero when any crash point lost or doubled an effect.
"""

from __future__ import annotations

import argparse
import sys
import time

import chaos.flows  # noqa: F401  (registers the flows)
from chaos.harness import FLOWS, run_flows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flow", action="append", choices=sorted(FLOWS), help="only this flow (repeatable)")
    parser.add_argument("--every", type=int, default=1, help="only every N-th crash point of each flow")
    args = parser.parse_args(argv)
    started = time.monotonic()
    total, lost, doubled = run_flows(args.flow or list(FLOWS), args.every, out=lambda line: print(line, flush=True))
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
    print(f"crash points: {total}, lost: {lost}, doubled: {doubled}")
    return 1 if lost or doubled else 0


if __name__ == "__main__":
    sys.exit(main())
