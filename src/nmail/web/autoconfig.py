"""Thunderbird autoconfig and Outlook autodiscover, so clients set themselves up."""

from __future__ import annotations

import re
from collections.abc import Callable
from xml.sax.saxutils import escape

from fastapi import APIRouter, HTTPException, Request, Response

from nmail.web.endpoints import ClientEndpoints

XML = "application/xml; charset=utf-8"
MAX_AUTODISCOVER_BODY = 16 * 1024
_EMAIL_RE = re.compile(rb"<EMailAddress>\s*([^<\s]{3,320})\s*</EMailAddress>", re.IGNORECASE)


def _domain_of(address: str) -> str | None:
    local, sep, domain = address.strip().rpartition("@")
    if not sep or not local or not domain or any(c in address for c in "<>&\"' \t\r\n"):
        return None
    return domain.lower()


def thunderbird_xml(endpoints: ClientEndpoints, domain: str) -> str:
    """config-v1.1.xml for one hosted domain."""
    d = escape(domain)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<clientConfig version="1.1">',
        f'  <emailProvider id="{d}">',
        f"    <domain>{d}</domain>",
        f"    <displayName>{d} mail</displayName>",
        f"    <displayShortName>{d}</displayShortName>",
    ]
    for kind, items in (
        ("incomingServer", endpoints.incoming),
        ("outgoingServer", endpoints.outgoing),
    ):
        for ep in items:
            parts += [
                f'    <{kind} type="{ep.protocol}">',
                f"      <hostname>{escape(endpoints.hostname)}</hostname>",
                f"      <port>{ep.port}</port>",
                f"      <socketType>{ep.socket}</socketType>",
                "      <authentication>password-cleartext</authentication>",
                "      <username>%EMAILADDRESS%</username>",
                f"    </{kind}>",
            ]
    parts += ["  </emailProvider>", "</clientConfig>", ""]
    return "\n".join(parts)


def autodiscover_xml(endpoints: ClientEndpoints, address: str) -> str:
    """The Outlook (POX) autodiscover answer."""
    protos = []
    for ep in endpoints.incoming + endpoints.outgoing:
        kind = {"pop3": "POP3", "imap": "IMAP", "smtp": "SMTP"}[ep.protocol]
        tls = (
            "<SSL>on</SSL>" if ep.socket == "SSL" else "<SSL>off</SSL><Encryption>TLS</Encryption>"
        )
        protos.append(
            "      <Protocol>"
            f"<Type>{kind}</Type><Server>{escape(endpoints.hostname)}</Server>"
            f"<Port>{ep.port}</Port><LoginName>{escape(address)}</LoginName>"
            f"<DomainRequired>off</DomainRequired><SPA>off</SPA>{tls}"
            "<AuthRequired>on</AuthRequired></Protocol>"
        )
    return "\n".join(
        [
            '<?xml version="1.0" encoding="utf-8"?>',
            '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">',
            '  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">',
            "    <Account><AccountType>email</AccountType><Action>settings</Action>",
            *protos,
            "    </Account>",
            "  </Response>",
            "</Autodiscover>",
            "",
        ]
    )


def router(endpoints: Callable[[], ClientEndpoints], is_hosted: Callable[[str], bool]) -> APIRouter:
    """Routes: /.well-known/autoconfig/mail/config-v1.1.xml, /mail/config-v1.1.xml,
    /autodiscover/autodiscover.xml (POST; also the capitalised path Outlook uses)."""
    api = APIRouter()

    def _hosted_domain(address: str | None, host_header: str | None) -> str:
        domain = _domain_of(address) if address else None
        if address and domain is None:
            raise HTTPException(400, "emailaddress is not an e-mail address")
        if domain is None and host_header:
            # autoconfig.example.com -> example.com
            host = host_header.split(":")[0].lower()
            domain = host.removeprefix("autoconfig.")
        if not domain or not is_hosted(domain):
            raise HTTPException(404, "this server does not host that domain")
        return domain

    def thunderbird(request: Request, emailaddress: str | None = None) -> Response:
        domain = _hosted_domain(emailaddress, request.headers.get("host"))
        return Response(thunderbird_xml(endpoints(), domain), media_type=XML)

    api.add_api_route("/.well-known/autoconfig/mail/config-v1.1.xml", thunderbird, methods=["GET"])
    api.add_api_route("/mail/config-v1.1.xml", thunderbird, methods=["GET"])

    async def autodiscover(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_AUTODISCOVER_BODY:
                raise HTTPException(413, "request too large")
        match = _EMAIL_RE.search(body)
        if not match:
            raise HTTPException(400, "no <EMailAddress> in the request")
        address = match.group(1).decode("utf-8", "replace")
        _hosted_domain(address, None)
        return Response(autodiscover_xml(endpoints(), address), media_type=XML)

    for path in ("/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"):
        api.add_api_route(path, autodiscover, methods=["POST"])
    return api
