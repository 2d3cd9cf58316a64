"""DKIM (RFC 6376): keys per hosted domain, signing, and the DNS records to publish.

Keys are 2048-bit RSA, stored as PEM in the `dkim_keys` table, one per
(domain, selector). Signatures are rsa-sha256 with relaxed/relaxed
canonicalization over the headers a forwarder or list is least likely to
touch, with From signed twice so no second From can be added.
"""

from __future__ import annotations

import base64
import ipaddress
import threading
import time

import dkim as dkimpy
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from nmail.db.tables import dkim_keys, domains
from nmail.message_source import MessageSource, SpooledMessage, message_head
from nmail.queue.dkim_stream import relaxed_body_hash, sign_hashed

KEY_BITS = 2048
# The headers we sign when present (RFC 6376 section 5.4.1's advice).
SIGNED_HEADERS = (
    "from", "sender", "reply-to", "subject", "date", "message-id", "to", "cc",
    "mime-version", "content-type", "content-transfer-encoding", "in-reply-to",
    "references", "list-id", "list-unsubscribe", "list-unsubscribe-post",
)
# How long a key looked up for signing stays in memory.
KEY_CACHE_SECONDS = 60.0

DnsRecord = tuple[str, str, str]


class DkimError(ValueError):
    """A key or message that cannot be used for DKIM."""


def generate_key() -> bytes:
    """A new 2048-bit RSA private key as PEM (PKCS#1, what dkimpy reads)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def public_record(pem: bytes) -> str:
    """The TXT value to publish at <selector>._domainkey.<domain>."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise DkimError(f"not a PEM private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimError("DKIM keys must be RSA")
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode("ascii")


def sign(message: MessageSource, domain: str, selector: str, pem: bytes) -> bytes:
    """The DKIM-Signature header (ending in CRLF) to prepend to `message`.

    A spooled (large) message is signed from its header block and a body
    hash computed piece by piece (queue/dkim_stream.py), never read whole.
    """
    present = _present_headers(message_head(message))
    include = [h for h in SIGNED_HEADERS if h in present]
    if "from" not in include:
        raise DkimError("message has no From header")
    include.append("from")  # over-sign: a second From would break the signature
    if not isinstance(message, bytes):
        return _sign_spooled(message, domain, selector, pem, include)
    try:
        header: bytes = dkimpy.sign(
            message,
            selector.encode("ascii"),
            domain.encode("ascii"),
            pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[h.encode("ascii") for h in include],
            linesep=b"\r\n",
        )
    except dkimpy.DKIMException as exc:
        raise DkimError(f"cannot sign for {domain}: {exc}") from None
    return header


def _sign_spooled(
    message: SpooledMessage, domain: str, selector: str, pem: bytes, include: list[str]
) -> bytes:
    head = message.head()
    end = head.find(b"\r\n\r\n")
    if end < 0:
        raise DkimError(f"the header block is longer than {len(head) // 1024} KiB")
    body_hash = relaxed_body_hash(message.chunks(end + 4))
    try:
        return sign_hashed(head[: end + 4], body_hash, domain, selector, pem, include)
    except dkimpy.DKIMException as exc:
        raise DkimError(f"cannot sign for {domain}: {exc}") from None


def _present_headers(message: bytes) -> set[str]:
    names: set[str] = set()
    for line in message.split(b"\n"):
        line = line.rstrip(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            continue
        name, colon, _ = line.partition(b":")
        if colon:
            names.add(name.strip().decode("ascii", "replace").lower())
    return names


class DkimKeys:
    """The `dkim_keys` table: one private key per (hosted domain, selector)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cache: dict[tuple[str, str], tuple[float, bytes | None]] = {}
        self._lock = threading.Lock()

    def ensure(self, domain_name: str, selector: str) -> bytes:
        """The domain's key for `selector`, created if missing; KeyError if not hosted."""
        name = domain_name.lower()
        existing = self.get(name, selector, cached=False)
        if existing is not None:
            return existing
        pem = generate_key()
        try:
            with self._engine.begin() as conn:
                domain_id = conn.execute(
                    select(domains.c.id).where(domains.c.name == name)
                ).scalar_one_or_none()
                if domain_id is None:
                    raise KeyError(f"domain {name!r} is not hosted here")
                conn.execute(
                    dkim_keys.insert().values(
                        domain_id=domain_id, selector=selector, private_key=pem,
                        created_at=int(time.time()),
                    )
                )
        except IntegrityError:
            pass  # another process created it first; read theirs below
        stored = self.get(name, selector, cached=False)
        if stored is None:  # pragma: no cover - only if the domain vanished meanwhile
            raise KeyError(f"domain {name!r} is not hosted here")
        return stored

    def get(self, domain: str, selector: str, *, cached: bool = True) -> bytes | None:
        """The PEM for (domain, selector), or None; cached briefly for the signing path."""
        key = (domain.lower(), selector)
        now = time.monotonic()
        if cached:
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        with self._engine.connect() as conn:
            row = conn.execute(
                select(dkim_keys.c.private_key)
                .join(domains, domains.c.id == dkim_keys.c.domain_id)
                .where(domains.c.name == key[0], dkim_keys.c.selector == selector)
            ).first()
        pem = bytes(row[0]) if row is not None else None
        with self._lock:
            self._cache[key] = (now + KEY_CACHE_SECONDS, pem)
        return pem


def dns_records(
    domain: str,
    hostname: str,
    selector: str,
    public_record: str | None,
    ip_hint: str | None = None,
) -> list[DnsRecord]:
    """(name, type, value) for everything a hosted domain should publish."""
    host = hostname.rstrip(".") + "."
    records: list[DnsRecord] = [(domain, "MX", f"10 {host}")]
    if ip_hint:
        kind = "AAAA" if ipaddress.ip_address(ip_hint).version == 6 else "A"
        records.append((hostname, kind, ip_hint))
    records.append((domain, "TXT", "v=spf1 mx -all"))
    # Forwarded mail's SRS sender is in the hostname's domain by default
    # ([srs] domain): SPF at the next hop checks this record.
    records.append((hostname, "TXT", "v=spf1 a -all"))
    if public_record:
        records.append((f"{selector}._domainkey.{domain}", "TXT", public_record))
    # aspf=s: forwarded mail leaves with an SRS sender in our hostname's
    # domain; strict SPF alignment keeps that SPF pass from lending a forged
    # From: in a hosted domain a DMARC pass (our DKIM signatures align exactly).
    records.append((
        f"_dmarc.{domain}", "TXT",
        f"v=DMARC1; p=quarantine; aspf=s; rua=mailto:postmaster@{domain}",
    ))
    records += [
        (f"autoconfig.{domain}", "CNAME", host),
        (f"autodiscover.{domain}", "CNAME", host),
        (f"_autodiscover._tcp.{domain}", "SRV", f"0 0 443 {host}"),
        (f"_submission._tcp.{domain}", "SRV", f"0 1 587 {host}"),
        (f"_submissions._tcp.{domain}", "SRV", f"0 1 465 {host}"),
        (f"_pop3s._tcp.{domain}", "SRV", f"0 1 995 {host}"),
    ]
    return records
