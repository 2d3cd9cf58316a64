"""Whether a message may get an automatic reply (vacation), RFC 3834 section 2.

Never to the null sender (bounces), to mailer daemons, to mailing lists
(List-Id, List-Unsubscribe, Precedence bulk/list/junk, -request/owner-
addresses) or to other automatic mail (Auto-Submitted other than "no"); and
only when the user's address is really among the message's recipients, so
Bcc'd list traffic and forwards from elsewhere get no answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

_DAEMONS = ("mailer-daemon", "postmaster", "nobody", "noreply", "no-reply", "donotreply",
            "do-not-reply", "listserv", "majordomo", "bounce", "bounces")


def may_auto_reply(sender: str, headers: Mapping[str, str], own_addresses: Iterable[str],
                   recipients_text: str) -> bool:
    """`headers`: lower-cased names -> values of the incoming message."""
    if not sender or "@" not in sender:
        return False
    local = sender.lower().rpartition("@")[0]
    if local in _DAEMONS or local.startswith("owner-") or local.endswith(
            ("-request", "-owner", "-bounces")):
        return False
    auto = headers.get("auto-submitted", "no").strip().lower()
    if auto and not auto.startswith("no"):
        return False
    if headers.get("precedence", "").strip().lower() in ("bulk", "list", "junk"):
        return False
    if any(name in headers for name in ("list-id", "list-unsubscribe", "list-post",
                                         "x-auto-response-suppress", "feedback-id")):
        return False
    text = recipients_text.lower()
    return any(address.lower() in text for address in own_addresses)
