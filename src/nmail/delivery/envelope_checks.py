"""The checks at MAIL FROM and RCPT TO: what the intake answers before DATA.

They are apart from acceptance at end of data (intake.py) because they
share nothing with it but the directory cache: they store, queue and log
nothing; each puts one question to `policy` with facts from the directory
and the index. Each comes in two forms. `check_sender` and
`check_recipient` may wait on the database (a worker thread);
`check_sender_now` and `check_recipient_now` answer on the event loop from
the generation-checked DirectoryCache (at most its local SQLite read of
the generation), or return None when they cannot (a lookup not in memory,
a mailbox with a quota, whose usage is read from the index, a directory on
a database server): the server then asks the waiting form in a worker
thread. Both forms run the same code (`cached_only`), so their answers
cannot differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nmail.config import SmtpSettings
from nmail.delivery.envelope import ClientInfo
from nmail.delivery.srs import SrsError, SrsRewriter, is_srs
from nmail.directory.cache import DirectoryCache, NotCached
from nmail.directory.errors import DirectoryError
from nmail.directory.model import Account, Resolution, Standing
from nmail.directory.names import comparable_address
from nmail.policy import limits, postmaster, recipients, relay, senders
from nmail.policy.decision import ACCEPT, Decision

# The session's account was deleted or its login disabled after AUTH.
LOGIN_REVOKED = Decision(530, "5.7.0", "Authentication no longer valid for this account")


@dataclass(frozen=True, slots=True)
class EnvelopeChecks:
    """MAIL FROM and RCPT TO decisions for every front door (through Intake)."""

    lookups: DirectoryCache
    settings: SmtpSettings
    usage: Callable[[int], int]  # a mailbox's usage in bytes, read from the index
    outbound: bool  # there is a queue for remote recipients
    srs: SrsRewriter | None
    clock: Callable[[], float]
    # Our host name in normal form (policy/postmaster.py): postmaster there is ours.
    host_name: str = ""

    # -- MAIL FROM -------------------------------------------------------

    def check_sender(self, client: ClientInfo, sender: str, size_hint: int | None) -> Decision:
        if client.auth_user:
            self.lookups.refresh()
        return self._sender_decision(client, sender, size_hint, cached_only=False)

    def check_sender_now(
        self, client: ClientInfo, sender: str, size_hint: int | None
    ) -> Decision | None:
        """check_sender when it can be answered without waiting (from memory); else None.

        Safe to call on an event loop: at most a local SQLite read.
        """
        if client.auth_user:
            if not self.lookups.local:
                return None
            self.lookups.refresh()
        try:
            return self._sender_decision(client, sender, size_hint, cached_only=True)
        except NotCached:
            return None

    def _sender_decision(
        self, client: ClientInfo, sender: str, size_hint: int | None, *, cached_only: bool
    ) -> Decision:
        decision = limits.check_size(size_hint or 0, self.settings.max_message_size)
        if not decision.accepted:
            return decision
        if client.auth_user:
            # The account may have been deleted or its login disabled since AUTH:
            # asked again at every MAIL, from the generation-checked cache.
            if not self._may_still_send(
                client.auth_user, client.auth_account_id, cached_only=cached_only
            ):
                return LOGIN_REVOKED
            owned = self.lookups.sender_addresses(client.auth_user, cached_only=cached_only)
            # Compared in the normal form RCPT resolves and the From: check reads
            # (me@bücher.test is me@xn--bcher-kva.test); the reply quotes it as sent.
            if senders.check_sender_owned(comparable_address(sender), owned).accepted:
                return ACCEPT
            return senders.sender_not_owned(sender)
        return ACCEPT

    def _may_still_send(self, login: str, account_id: int | None, *, cached_only: bool) -> bool:
        """The authenticated account still exists (the same one: not deleted and
        created again) and may log in."""
        standing = self.lookups.standing(login, account_id, cached_only=cached_only)
        return standing is Standing.ACTIVE

    # -- RCPT TO ---------------------------------------------------------

    def resolve(self, address: str, *, cached_only: bool = False) -> Resolution:
        """The directory's resolution of `address`; when nothing there takes them,
        postmaster and MAILER-DAEMON at our host name reach the server
        administrators, and postmaster at a hosted domain its administrators,
        else the server's (policy/postmaster.py). Call lookups.refresh() first."""
        lookups = self.lookups
        resolution = lookups.resolve(address, cached_only=cached_only)
        if resolution.hosted and not resolution.unknown:
            return resolution  # its own account, alias or catch-all
        normal = resolution.address
        if postmaster.is_host_mailbox(normal, self.host_name):
            admins = lookups.server_admins(cached_only=cached_only)
        elif resolution.hosted and postmaster.is_domain_postmaster(normal):
            admins = postmaster.domain_administrators(
                lookups.domain_admins(normal.rpartition("@")[2], cached_only=cached_only),
                lookups.server_admins(cached_only=cached_only),
            )
        else:
            return resolution
        return Resolution(normal, True, admins)

    def check_recipient(
        self, client: ClientInfo, sender: str, address: str, size_hint: int | None
    ) -> tuple[Decision, Resolution | None]:
        self.lookups.refresh()
        return self._recipient_decision(client, sender, address, size_hint, cached_only=False)

    def check_recipient_now(
        self, client: ClientInfo, sender: str, address: str, size_hint: int | None
    ) -> tuple[Decision, Resolution | None] | None:
        """check_recipient when it can be answered from memory; else None.

        Safe to call on an event loop: at most a local SQLite read.
        """
        if not self.lookups.local:
            return None
        self.lookups.refresh()
        try:
            return self._recipient_decision(client, sender, address, size_hint, cached_only=True)
        except NotCached:
            return None

    def _recipient_decision(
        self,
        client: ClientInfo,
        sender: str,
        address: str,
        size_hint: int | None,
        *,
        cached_only: bool,
    ) -> tuple[Decision, Resolution | None]:
        lookups = self.lookups
        try:
            resolution = self.resolve(address, cached_only=cached_only)
        except DirectoryError as exc:
            return Decision(501, "5.1.3", f"Bad recipient address syntax: {exc}"), None
        srs_local, _, srs_domain = address.rpartition("@")
        if (
            self.srs is not None
            and is_srs(srs_local)
            and (resolution.hosted or srs_domain.lower() == self.srs.domain.lower())
        ):
            return self._srs_recipient(client, sender, srs_local, size_hint, cached_only)
        if not resolution.hosted:
            decision = relay.check_relay(
                client_ip=client.ip,
                authenticated=client.auth_user is not None,
                relay_networks=lookups.relay_networks(cached_only=cached_only),
            )
            if decision.accepted and not self.outbound:
                return Decision(451, "4.3.2", "Outbound delivery is not available"), None
            return decision, resolution if decision.accepted else None
        if resolution.unknown:
            normal = resolution.address
            if postmaster.is_host_mailbox(normal, self.host_name) or (
                postmaster.is_domain_postmaster(normal)
            ):
                return postmaster.no_administrator(address), None
            return recipients.unknown_user(address), None
        checked: list[Account] = []
        first_refusal: Decision | None = None
        for account in resolution.accounts:
            if account.quota_bytes and cached_only:
                raise NotCached(account.address)  # usage is read from the index
            decision = recipients.check_account(
                address=account.address,
                receive_enabled=account.receive_enabled,
                sender_rejected=bool(sender)
                and lookups.is_rejected(account, sender, cached_only=cached_only),
                usage=self.usage(account.id) if account.quota_bytes else 0,
                quota=account.quota_bytes,
                size_hint=size_hint or 0,
            )
            if decision.accepted:
                checked.append(account)
            elif first_refusal is None:
                first_refusal = decision
        if not checked and not resolution.remote:
            assert first_refusal is not None
            return first_refusal, None
        # An alias fanning out to several mailboxes delivers to those that can take it.
        # Every one can, nearly always: then that is the (frozen) resolution itself,
        # not an equal copy (~4k instructions a RCPT, callgrind).
        if len(checked) == len(resolution.accounts):
            kept = resolution
        else:
            kept = Resolution(resolution.address, True, tuple(checked), resolution.remote)
        if kept.remote and not self.outbound:
            return Decision(451, "4.3.2", "Outbound delivery is not available"), None
        return ACCEPT, kept

    def _srs_recipient(
        self, client: ClientInfo, sender: str, local: str, size_hint: int | None,
        cached_only: bool,
    ) -> tuple[Decision, Resolution | None]:
        """A bounce coming back to an address SRS made: on to the original sender."""
        assert self.srs is not None
        if sender:
            return Decision(550, "5.7.1", "SRS addresses accept only bounces (MAIL FROM:<>)"), None
        try:
            original = self.srs.reverse(local, self.clock())
        except SrsError as exc:
            return Decision(550, "5.1.1", f"Bad SRS address: {exc}"), None
        try:
            back = self.lookups.resolve(original, cached_only=cached_only)
        except DirectoryError as exc:
            return Decision(550, "5.1.1", f"Bad SRS address: {exc}"), None
        if back.hosted:
            return self._recipient_decision(
                client, sender, original, size_hint, cached_only=cached_only
            )
        if not self.outbound:
            return Decision(451, "4.3.2", "Outbound delivery is not available"), None
        # Not relaying for an outsider: only an address we made names this way back.
        return ACCEPT, Resolution(original, True, (), (original,))
