"""`nmail doctor`: check an install and say plainly what is wrong and how to fix it.

Checks, in order (each line: ok, WARN or FAIL):
- permissions: the data directory and what holds secrets or mail (index,
  nmail.toml, tls/, logs/, queue/, mail/) are closed to group and others
  (nmail.permissions); `--fix` closes them, as `nmail serve` does at start;
- configuration: nmail.toml reads without errors;
- database: it answers and its schema is the one this nmail expects;
- TLS: certificate and key load together, the certificate is not expired
  (WARN under 14 days left, and for a self-signed one);
- mail store: mail/ and queue/ exist and are writable;
- the purge area: how many deleted accounts' mailboxes wait there (info).

Exit status 1 when any check FAILs, 0 otherwise (WARN is not a failure).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from rich.text import Text

from nmail.accounts.purge_area import PURGE_DIR
from nmail.certs import CertificateError, describe, server_context
from nmail.cli.context import CliContext
from nmail.config import CONFIG_NAME, Config, ConfigError, load_config
from nmail.db.engine import make_engine
from nmail.db.migrate import alembic_config
from nmail.permissions import find_open, tighten

EXPIRY_WARNING_DAYS = 14


def register(commands: Any) -> None:
    p = commands.add_parser(
        "doctor",
        help="check permissions, configuration, database, TLS and mail store",
        description="Check the install; exit status 1 when a check fails.",
    )
    p.add_argument(
        "--fix", action="store_true",
        help="close permissions that are open to group or others (as nmail serve does)",
    )
    p.set_defaults(handler=run)


@dataclass
class Report:
    """The lines of a run, and whether any failed."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.lines.append(("ok", text))

    def warn(self, text: str) -> None:
        self.lines.append(("WARN", text))

    def fail(self, text: str) -> None:
        self.lines.append(("FAIL", text))

    @property
    def failed(self) -> int:
        return sum(1 for level, _ in self.lines if level == "FAIL")


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    report = Report()
    data_dir = ctx.data_dir
    if not (data_dir / CONFIG_NAME).exists():
        report.fail(f"{data_dir / CONFIG_NAME} not found: not an nmail data directory"
                    " (run `nmail init`, or give --data DIR)")
        return _print(ctx, report)
    config: Config | None
    try:
        config = load_config(data_dir)
    except ConfigError as exc:
        report.fail(f"configuration: {exc}")
        config = None
    else:
        report.ok(f"configuration: {data_dir / CONFIG_NAME} reads")
    _permissions(report, ctx, config, fix=args.fix)
    if config is not None:
        for check in CHECKS:
            check(report, config)
    return _print(ctx, report)


def _print(ctx: CliContext, report: Report) -> int:
    for level, text in report.lines:
        ctx.out.print(Text(f"{level:<4} {text}"))
    if report.failed:
        ctx.out.print(Text(f"{report.failed} problem(s) found"))
        return 1
    ctx.out.print(Text("no problems found"))
    return 0


def _permissions(report: Report, ctx: CliContext, config: Config | None, *, fix: bool) -> None:
    if fix:
        changed, failed = tighten(ctx.data_dir, config)
        for item in changed:
            report.ok(f"permissions fixed: {item.tightened()}")
        for line in failed:
            report.fail(f"permissions: {line}")
    still_open = find_open(ctx.data_dir, config)
    for item in still_open:
        report.fail(f"permissions: {item.describe()}; group and others can reach it"
                    " (fix: `nmail doctor --fix`, or restart `nmail serve`)")
    if not still_open:
        report.ok(f"permissions: {ctx.data_dir} and its secrets are private to this user")


def _database(report: Report, config: Config) -> None:
    engine = make_engine(config.database_url)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    except Exception as exc:
        report.fail(f"database: cannot be read ({type(exc).__name__}: {str(exc)[:200]})")
        return
    finally:
        engine.dispose()
    if current == heads:
        report.ok(f"database: answers, schema current ({', '.join(sorted(heads))})")
    elif not current:
        report.fail("database: no nmail schema (run `nmail serve` or `nmail init`)")
    else:
        report.warn(f"database: schema {', '.join(sorted(current))}, this nmail expects"
                    f" {', '.join(sorted(heads))} (the next `nmail serve` upgrades it)")


def _tls(report: Report, config: Config) -> None:
    cert, key = config.tls.cert, config.tls.key
    if cert is None or key is None:
        report.warn("TLS: no certificate configured; STARTTLS and ports 465/995 are off")
        return
    try:
        server_context(cert, key)
        info = describe(cert)
    except CertificateError as exc:
        report.fail(f"TLS: {exc}")
        return
    if info.days_left < 0:
        report.fail(f"TLS: {cert} expired on {info.not_after:%Y-%m-%d}")
    elif info.days_left < EXPIRY_WARNING_DAYS:
        report.warn(f"TLS: {cert} expires in {info.days_left} day(s)")
    elif info.self_signed:
        report.warn(f"TLS: {cert} is self-signed (clients will warn; `nmail tls` installs one)")
    else:
        report.ok(f"TLS: {cert} valid until {info.not_after:%Y-%m-%d}")


def _mail_store(report: Report, config: Config) -> None:
    for name, path in (("mail store", config.mail_dir), ("queue", config.queue_dir)):
        if not path.is_dir():
            report.fail(f"{name}: {path} is missing (`nmail serve` creates it)")
        elif not os.access(path, os.W_OK | os.X_OK):
            report.fail(f"{name}: {path} is not writable by this user")
        else:
            report.ok(f"{name}: {path} is writable")
    area = config.mail_dir / PURGE_DIR
    waiting = sum(1 for _ in area.iterdir()) if area.is_dir() else 0
    if waiting:
        report.ok(f"purge area: {waiting} deleted account(s)' mail in {area}"
                  " (`nmail user purged --delete-older-than DAYS` deletes it)")


CHECKS: tuple[Callable[[Report, Config], None], ...] = (_database, _tls, _mail_store)
