"""DKIM keys per domain, signing, verification with dkimpy, and the records to publish."""

from __future__ import annotations

import base64

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine, func, insert, select

from nmail.db.tables import dkim_keys, domains
from nmail.queue.dkim import DkimError, DkimKeys, dns_records, generate_key, public_record, sign

MESSAGE = (
    b"From: Alice <alice@example.test>\r\nTo: bob@remote.test\r\nSubject: =?UTF-8?B?7JWI64WV?=\r\n"
    b"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"\xec\x95\x88\xeb\x85\x95 \r\n\r\n\r\n"
)


def dnsfunc_for(records: dict[str, str]):  # type: ignore[no-untyped-def]
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return records.get(name.decode(), "").encode()

    return dnsfunc


def add_domain(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(domains).values(name=name, created_at=0))


def test_generated_key_is_2048_bit_rsa_and_record_matches() -> None:
    pem = generate_key()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    record = public_record(pem)
    assert record.startswith("v=DKIM1; k=rsa; p=")
    der = base64.b64decode(record.split("p=", 1)[1])
    public = serialization.load_der_public_key(der)
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers() == key.public_key().public_numbers()


def test_signature_verifies_and_detects_changes() -> None:
    pem = generate_key()
    header = sign(MESSAGE, "example.test", "s1", pem)
    assert header.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    assert header.endswith(b"\r\n")
    text = header.decode().replace("\r\n ", " ")
    assert "d=example.test;" in text and "s=s1;" in text
    h_tag = text.split(" h=", 1)[1].split(";", 1)[0].replace(" ", "")
    assert h_tag.split(":").count("from") == 2, "From is over-signed"
    assert {"subject", "date", "message-id", "to", "mime-version", "content-type"} <= set(
        h_tag.split(":"))
    dnsfunc = dnsfunc_for({"s1._domainkey.example.test.": public_record(pem)})
    signed = header + MESSAGE
    assert dkimpy.verify(signed, dnsfunc=dnsfunc)
    # relaxed canonicalization: whitespace changes in transit do not matter
    assert dkimpy.verify(signed.replace(b"To: bob", b"To:   bob"), dnsfunc=dnsfunc)
    # a second From added by someone else breaks it
    assert not dkimpy.verify(header + b"From: mallory@evil.test\r\n" + MESSAGE, dnsfunc=dnsfunc)
    assert not dkimpy.verify(signed.replace(b"bob@remote", b"eve@remote"), dnsfunc=dnsfunc)
    # the wrong key does not verify
    other = dnsfunc_for({"s1._domainkey.example.test.": public_record(generate_key())})
    assert not dkimpy.verify(signed, dnsfunc=other)


def test_sign_refuses_bad_input() -> None:
    with pytest.raises(DkimError):
        sign(b"Subject: no from\r\n\r\nbody\r\n", "example.test", "s1", generate_key())
    with pytest.raises(DkimError):
        sign(MESSAGE, "example.test", "s1", b"-----BEGIN RSA PRIVATE KEY-----\nnope\n-----END")
    with pytest.raises(DkimError):
        public_record(b"not a key")


def test_keys_stored_once_per_domain_and_selector(engine: Engine) -> None:
    add_domain(engine, "example.test")
    keys = DkimKeys(engine)
    assert keys.get("example.test", "nmail") is None
    pem = keys.ensure("Example.TEST", "nmail")
    assert keys.ensure("example.test", "nmail") == pem
    assert keys.get("example.test", "nmail") == pem
    other = keys.ensure("example.test", "2026")
    assert other != pem
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dkim_keys)).scalar_one() == 2
    with pytest.raises(KeyError):
        keys.ensure("not-hosted.test", "nmail")


def test_dns_records_lists_everything_to_publish() -> None:
    record = public_record(generate_key())
    rows = dns_records("example.test", "mail.example.test", "nmail", record, "192.0.2.10")
    by_name = {(name, kind): value for name, kind, value in rows}
    assert by_name[("example.test", "MX")] == "10 mail.example.test."
    assert by_name[("mail.example.test", "A")] == "192.0.2.10"
    assert by_name[("example.test", "TXT")] == "v=spf1 mx -all"
    assert by_name[("mail.example.test", "TXT")] == "v=spf1 a -all"  # the SRS domain
    assert by_name[("nmail._domainkey.example.test", "TXT")] == record
    assert by_name[("_dmarc.example.test", "TXT")] == (
        "v=DMARC1; p=quarantine; aspf=s; rua=mailto:postmaster@example.test")
    assert by_name[("autoconfig.example.test", "CNAME")] == "mail.example.test."
    assert by_name[("autodiscover.example.test", "CNAME")] == "mail.example.test."
    assert by_name[("_autodiscover._tcp.example.test", "SRV")] == "0 0 443 mail.example.test."
    assert ("_submission._tcp.example.test", "SRV") in by_name
    v6 = dns_records("example.test", "mail.example.test", "nmail", None, "2001:db8::1")
    assert ("mail.example.test", "AAAA", "2001:db8::1") in v6
    assert not any("_domainkey" in name for name, _, _ in v6)
    with pytest.raises(ValueError):
        dns_records("example.test", "mail.example.test", "nmail", None, "not-an-ip")
