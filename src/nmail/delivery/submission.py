"""What a message may carry out of here: our signature, its sender, its DSN wishes.

DKIM signing with a hosted domain's key vouches that the domain sent the
message. So the queue signs only a submission: mail from an authenticated
user whose From: and Sender: they may use (their address, their aliases,
an admin's send-as grant; checked at end of data, 550 5.7.1 otherwise), or
mail from a relay network the admin listed (trusted hosts such as a web
server). Everything else that leaves is forwarded inbound mail (an alias,
a catch-all, a forwarding): it is never signed, its envelope sender is
rewritten with SRS (delivery/srs.py) so SPF passes at the next hop and
bounces still find the author, and it gets no success or "relayed" notice
and no full content in a notice (RET=HDRS): the sender of inbound mail is
not verified, and such notices would reflect the content to whoever they
name (backscatter), signed copies included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.delivery.srs import SrsRewriter
from nmail.directory.cache import DirectoryCache
from nmail.directory.errors import InvalidName
from nmail.directory.names import comparable_address, normalize_domain
from nmail.mime.originators import originators
from nmail.policy import relay, senders
from nmail.policy.decision import ACCEPT, Decision
from nmail.queue.content import from_domain


@dataclass(frozen=True, slots=True)
class Outbound:
    """How the queue is to send the remote copies of one message."""

    sender: str
    sign_domain: str | None  # the hosted domain whose key may sign, or None
    notify: list[str | None]
    ret: str | None


def check_authors(lookups: DirectoryCache, auth_user: str, content: bytes) -> Decision:
    """ACCEPT when every From:/Sender: address is one `auth_user` may use; else 550 5.7.1."""
    found = originators(content)
    if found.problem is not None:
        return Decision(550, "5.7.1", f"Message refused: {found.problem}")
    owned = lookups.sender_addresses(auth_user)
    for address in found.addresses:
        if not senders.may_send_as(comparable_address(address), owned):
            return senders.author_not_owned(address, auth_user)
    return ACCEPT


def is_submission(lookups: DirectoryCache, client: ClientInfo) -> bool:
    """Mail we vouch for: a user's, our own, or from a listed relay network."""
    if client.auth_user is not None or client.protocol == "LOCAL":
        return True  # a user, or a message we made (a vacation reply, a notice)
    # The same networks relay control trusts (loopback when none is listed).
    return relay.check_relay(
        client_ip=client.ip, authenticated=False, relay_networks=lookups.relay_networks()
    ).accepted


def plan_outbound(
    lookups: DirectoryCache,
    srs: SrsRewriter | None,
    envelope: Envelope,
    content: bytes,
    notify: Sequence[str | None],
) -> Outbound:
    """The sender, signing domain and DSN requests of a message's remote copies."""
    if is_submission(lookups, envelope.client):
        # The author's domain: for a user, the From: that check_authors
        # read; a relay network is trusted, and the quick header read keeps
        # a busy web server's mail off the full parse.
        if envelope.client.auth_user is not None:
            author = originators(content).author
            domain = author.rpartition("@")[2] if author else None
        elif envelope.client.protocol == "LOCAL":
            domain = _own_message_domain(content)
        else:
            domain = from_domain(content)
        if domain is not None:
            try:
                domain = normalize_domain(domain, require_dot=False)
            except InvalidName:
                domain = None
        if envelope.client.auth_user is not None:
            return Outbound(envelope.sender, domain, list(notify), envelope.dsn_ret)
        # Success notices and full content only for a sender who logged in: a
        # relay network's hosts are trusted to submit, not to name anyone.
        return Outbound(
            envelope.sender, domain, [_without_success(n) for n in notify],
            "HDRS" if envelope.dsn_ret else None,
        )
    sender = srs.forward(envelope.sender) if srs is not None else envelope.sender
    return Outbound(
        sender,
        None,
        [_without_success(n) for n in notify],
        "HDRS" if envelope.dsn_ret else None,
    )


def _own_message_domain(content: bytes) -> str | None:
    """The domain to sign a message we made (a vacation reply) with: the one
    domain of every address its From:/Sender: show, or None (unsigned).

    Its From: is built from account data a user may set (the display name):
    whatever reads as an address there must be of the signing domain too.
    """
    found = originators(content)
    domains = {a.rpartition("@")[2].lower() for a in found.addresses}
    if found.problem is not None or len(domains) != 1:
        return None
    try:
        return normalize_domain(domains.pop(), require_dot=False)
    except InvalidName:
        return None


def _without_success(notify: str | None) -> str | None:
    """NOTIFY minus SUCCESS (no success or relayed notice to an unverified sender)."""
    if notify is None:
        return None
    words = [w for w in notify.split(",") if w.strip().upper() != "SUCCESS"]
    return ",".join(words) if words else "NEVER"
