"""The command line every benchmark shares: its own options plus ``--quick`` (imported as ``_cli``)."""

from __future__ import annotations

import argparse
from typing import Any


def parse(parser: argparse.ArgumentParser, **quick: Any) -> argparse.Namespace:
    """Parse the command line; with ``--quick``, replace the options named in ``quick`` by tiny values so the
    benchmark runs end to end in seconds (CI runs every benchmark this way to check it works, never its timings)."""
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and one round: checks that the benchmark runs; its figures mean nothing")
    args = parser.parse_args()
    if args.quick:
        for name, value in quick.items():
            if not hasattr(args, name):
                raise AttributeError(f"--quick sets unknown option {name!r}")
            setattr(args, name, value)
    return args
