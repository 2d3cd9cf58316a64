"""DKIM signing of a message that stays in its spool file: the body hashed in pieces.

dkimpy signs a message it holds whole (canonicalized, so twice). A large
message (past 1 MiB, nmail/message_source.py) is not held whole: its
relaxed body hash (RFC 6376 3.4.4) is computed here over pieces cut at a
CRLF, with the trailing empty lines held back until a line with text
follows them (the only rule that spans pieces), and dkimpy is given the
header block alone to sign with that hash. Memory: one piece (1 MiB) and
the header block. A test checks that dkimpy's own verification accepts
the result, and that the hash equals dkimpy's on whole messages.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Iterable

import dkim as dkimpy
from dkim.canonicalization import CanonicalizationPolicy
from dkim.crypto import parse_pem_private_key

_TRAILING_WSP = re.compile(rb"[\t ]+\r\n")
_WSP = re.compile(rb"[\t ]+")


def relaxed_body_hash(pieces: Iterable[bytes]) -> bytes:
    """SHA-256 of the relaxed canonical form of the body given in `pieces`."""
    digest = hashlib.sha256()
    held = 0  # empty lines not hashed yet: they count only if text follows
    carry = b""
    for piece in pieces:
        data = carry + piece if carry else piece
        cut = data.rfind(b"\r\n") + 2
        if cut < 2:
            carry = data
            continue
        carry = data[cut:]
        held = _hash_lines(digest, data[:cut], held)
    if carry:
        # A last line without CRLF (never from DATA) gets one, its spaces kept
        # as dkimpy keeps them.
        _hash_lines(digest, _WSP.sub(b" ", carry) + b"\r\n", held, canonical=True)
    return digest.digest()


def _hash_lines(digest: hashlib._Hash, lines: bytes, held: int, *, canonical: bool = False) -> int:
    """Hash whole CRLF lines (after `held` empty ones); the empty lines now held."""
    canon = lines if canonical else _WSP.sub(b" ", _TRAILING_WSP.sub(b"\r\n", lines))
    text = canon.rstrip(b"\r\n")
    if not text:
        return held + len(canon) // 2
    if held:
        digest.update(b"\r\n" * held)
    digest.update(text)
    digest.update(b"\r\n")
    return (len(canon) - len(text)) // 2 - 1


def sign_hashed(
    header_block: bytes,
    body_hash: bytes,
    domain: str,
    selector: str,
    pem: bytes,
    include: list[str],
) -> bytes:
    """The DKIM-Signature header (rsa-sha256, relaxed/relaxed) for a message whose
    header block (ending in its blank line) and relaxed body hash are given.

    The tags are those dkimpy.sign writes; only the body hash comes from here.
    """
    signer = dkimpy.DKIM(header_block, linesep=b"\r\n", signature_algorithm=b"rsa-sha256")
    try:
        key = parse_pem_private_key(pem)
    except dkimpy.UnparsableKeyError as exc:
        raise dkimpy.KeyFormatError(str(exc)) from None
    canon = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    headers = tuple(h.encode("ascii").lower() for h in include)
    signer.include_headers = headers
    signer.hasher = hashlib.sha256
    fields = [
        (b"v", b"1"),
        (b"a", b"rsa-sha256"),
        (b"c", canon.to_c_value()),
        (b"d", domain.encode("ascii")),
        (b"i", b"@" + domain.encode("ascii")),
        (b"q", b"dns/txt"),
        (b"s", selector.encode("ascii")),
        (b"t", str(int(time.time())).encode("ascii")),
        (b"h", b" : ".join(headers)),
        (b"bh", base64.b64encode(body_hash)),
        (b"b", b"0" * 60),  # folds b= onto a line of its own, as dkimpy does
    ]
    value: bytes = signer.gen_header(fields, headers, canon, b"DKIM-Signature", key)
    return b"DKIM-Signature: " + value
