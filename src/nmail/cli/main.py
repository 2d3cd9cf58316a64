"""Entry point: `nmail [--data DIR] COMMAND ...`."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from nmail import __version__
from nmail.cli.context import CliContext, CliError, print_error
from nmail.config import ConfigError, resolve_data_dir

Handler = Callable[[argparse.Namespace, CliContext], int | None]


def _command_modules() -> list[ModuleType]:
    # Imported here so `nmail --help` stays fast and a broken optional module
    # cannot stop the others from loading.
    from nmail.cli import (
        alias_cmd,
        dbsync_cmd,
        doctor_cmd,
        domain_cmd,
        init_cmd,
        lockout_cmd,
        relay_cmd,
        serve_cmd,
        user_cmd,
    )

    modules: list[ModuleType] = [
        init_cmd,
        serve_cmd,
        domain_cmd,
        user_cmd,
        alias_cmd,
        relay_cmd,
        lockout_cmd,
        dbsync_cmd,
        doctor_cmd,
    ]
    for optional in ("queue_cmd", "tls_cmd", "bounce_cmd"):
        with contextlib.suppress(ImportError):
            modules.append(importlib.import_module(f"nmail.cli.{optional}"))
    return modules


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One clear line, like every other nmail error, plus where to look.
        print_error(f"{message} (see `{self.prog} --help`)")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nmail", description="nmail mail server and tools")
    parser.add_argument(
        "--data", metavar="DIR", help="data directory (default: $NMAIL_DATA or ./data)"
    )
    parser.add_argument("--version", action="version", version=f"nmail {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for module in _command_modules():
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = CliContext(resolve_data_dir(args.data))
    handler: Handler = args.handler
    try:
        return handler(args, ctx) or 0
    except (CliError, ConfigError) as exc:
        print_error(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
