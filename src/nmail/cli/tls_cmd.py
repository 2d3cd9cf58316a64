"""`nmail tls show`: what certificate the listeners present."""

from __future__ import annotations

import argparse
from typing import Any

from nmail.certs import CertificateError, describe
from nmail.cli.context import CliContext


def register(commands: Any) -> None:
    p = commands.add_parser("tls", help="TLS certificate tools")
    sub = p.add_subparsers(dest="tls_command", metavar="ACTION", required=True)
    show = sub.add_parser(
        "show", help="print subject, SANs and expiry of the configured certificate"
    )
    show.set_defaults(handler=show_cmd)


def show_cmd(args: argparse.Namespace, ctx: CliContext) -> int:
    cert = ctx.config.tls.cert
    if cert is None:
        ctx.fail("no certificate configured ([tls] cert in nmail.toml)")
    try:
        info = describe(cert)
    except CertificateError as exc:
        ctx.fail(str(exc))
    ctx.out.print(f"file:      {cert}")
    ctx.out.print(f"subject:   {info.subject}")
    ctx.out.print(f"issuer:    {info.issuer}{'  (self-signed)' if info.self_signed else ''}")
    ctx.out.print(f"SANs:      {', '.join(info.sans) or '(none)'}")
    ctx.out.print(f"valid:     {info.not_before:%Y-%m-%d} .. {info.not_after:%Y-%m-%d}")
    state = "EXPIRED" if info.days_left < 0 else f"{info.days_left} days left"
    ctx.out.print(f"expires:   {info.not_after:%Y-%m-%d %H:%M} UTC ({state})")
    return 0
