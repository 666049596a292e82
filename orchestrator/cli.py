"""`spotfit` command line: one subcommand per module, each with `add_parser` and `run(args) -> int`.

User errors (ConfigError and friends) become one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from pipeline.config import ConfigError

# Each entry: orchestrator module that defines add_parser(subparsers) and run(args) -> int.
COMMANDS = [
    "orchestrator.train_cmd",
    "orchestrator.cost_cmd",
    "orchestrator.plan_cmd",
    "orchestrator.export_cmd",
    "orchestrator.jobs",
    "orchestrator.tune_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spotfit", description="Low-cost fine-tuning of transformers on Ray.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:
        print(f"spotfit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spotfit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
