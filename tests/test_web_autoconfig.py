"""Issue 3: Thunderbird autoconfig and Outlook autodiscover on the http listener."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server_rig import RunningServer, make_data_dir

NS = {
    "a": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with RunningServer(make_data_dir(tmp_path)) as srv:
        srv.add_user("bob@test.local")
        yield srv


def url(server: RunningServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port('http')}{path}"


@pytest.mark.parametrize(
    "path",
    [
        "/mail/config-v1.1.xml?emailaddress=bob@test.local",
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=bob%40test.local",
    ],
)
def test_thunderbird_autoconfig_lists_the_ports_in_use(server: RunningServer, path: str) -> None:
    resp = httpx.get(url(server, path))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(resp.text)
    provider = root.find("emailProvider")
    assert provider is not None
    assert provider.get("id") == "test.local"
    servers = {
        (s.get("type"), s.findtext("port"), s.findtext("socketType"))
        for s in [*provider.findall("incomingServer"), *provider.findall("outgoingServer")]
    }
    assert ("pop3", str(server.port("pop3s")), "SSL") in servers
    assert ("pop3", str(server.port("pop3")), "STARTTLS") in servers
    assert ("smtp", str(server.port("submissions")), "SSL") in servers
    assert ("smtp", str(server.port("submission")), "STARTTLS") in servers
    assert all(
        s.findtext("hostname") == "mail.example.com" for s in provider.findall("incomingServer")
    )
    # Port 25 is for other servers, never offered to clients.
    assert str(server.port("smtp")) not in {p for _, p, _ in servers}


def test_autoconfig_by_host_header(server: RunningServer) -> None:
    resp = httpx.get(
        url(server, "/.well-known/autoconfig/mail/config-v1.1.xml"),
        headers={"Host": "autoconfig.test.local"},
    )
    assert resp.status_code == 200
    assert 'emailProvider id="test.local"' in resp.text


def test_autoconfig_refuses_unhosted_and_malformed(server: RunningServer) -> None:
    assert (
        httpx.get(url(server, "/mail/config-v1.1.xml?emailaddress=a@gmail.example")).status_code
        == 404
    )
    assert (
        httpx.get(url(server, "/mail/config-v1.1.xml?emailaddress=not-an-address")).status_code
        == 400
    )
    assert (
        httpx.get(url(server, "/mail/config-v1.1.xml?emailaddress=<x>@test.local")).status_code
        == 400
    )


AUTODISCOVER_REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>{address}</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"""


@pytest.mark.parametrize(
    "path", ["/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"]
)
def test_outlook_autodiscover(server: RunningServer, path: str) -> None:
    resp = httpx.post(
        url(server, path), content=AUTODISCOVER_REQUEST.format(address="bob@test.local")
    )
    assert resp.status_code == 200
    root = ET.fromstring(resp.text)
    protocols = root.findall(".//a:Protocol", NS)
    found = {
        (p.findtext("a:Type", namespaces=NS), p.findtext("a:Port", namespaces=NS))
        for p in protocols
    }
    assert ("POP3", str(server.port("pop3s"))) in found
    assert ("SMTP", str(server.port("submissions"))) in found
    assert {p.findtext("a:LoginName", namespaces=NS) for p in protocols} == {"bob@test.local"}


def test_autodiscover_bad_requests(server: RunningServer) -> None:
    path = "/autodiscover/autodiscover.xml"
    assert httpx.post(url(server, path), content=b"<junk/>").status_code == 400
    assert (
        httpx.post(
            url(server, path), content=AUTODISCOVER_REQUEST.format(address="x@elsewhere.example")
        ).status_code
        == 404
    )
    big = b"<EMailAddress>" + b"a" * 20000 + b"@test.local</EMailAddress>"
    assert httpx.post(url(server, path), content=big).status_code == 413
    # Entity expansion is never attempted: the body is not parsed as XML.
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        b"<EMailAddress>&a;@test.local</EMailAddress>"
    )
    assert httpx.post(url(server, path), content=bomb).status_code in (400, 404)
