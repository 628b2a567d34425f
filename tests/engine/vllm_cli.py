"""vLLM's own command-line parsers, built the way `vllm` (vllm/entrypoints/cli/main.py) builds them.

Imported only in the engine venv (scripts/engine-env.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import io


def _subcommand(module_name: str, name: str):
    import importlib

    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog="vllm")
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    module = importlib.import_module(module_name)
    for cmd in module.cmd_init():
        if cmd.name == name:
            sub = cmd.subparser_init(subparsers)
            sub.set_defaults(dispatch_function=cmd.cmd)
            return parser, sub, cmd
    raise LookupError(f"{module_name} has no subcommand {name!r}")


def serve_parser():
    """(the top-level `vllm` parser, the `serve` subparser, the serve command)."""
    return _subcommand("vllm.entrypoints.cli.serve", "serve")


def bench_serve_parser():
    """The parser of `vllm bench serve` (its options only, as the bench subcommand adds them)."""
    from vllm.entrypoints.cli.benchmark.serve import BenchmarkServingSubcommand
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog="vllm bench serve")
    BenchmarkServingSubcommand.add_cli_args(parser)
    return parser


def parse_serve(argv: list[str]) -> argparse.Namespace:
    """Parse a full `vllm serve ...` argv and run vLLM's own serve-args validation on it.

    Raises SystemExit (argparse's error) or the validation's exception.
    """
    if argv[:2] != ["vllm", "serve"]:
        raise ValueError(f"not a vllm serve command line: {argv[:2]}")
    parser, _, cmd = serve_parser()
    args = parser.parse_args(argv[1:])
    cmd.validate(args)
    return args


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {o for action in parser._actions for o in action.option_strings}


def quietly(function, *args):
    """function(*args) with argparse's error output swallowed; returns (result or None, error text)."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            return function(*args), ""
        except SystemExit:
            return None, stderr.getvalue()
