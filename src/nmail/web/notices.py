"""The list's line after an action, shown only when this server said it.

After a change to selected messages the list is reached by a redirect to
`/mail/F?done=move&n=3` (and, after "mark as spam", `offer_reject=` with the
senders), so the page can say "3 messages moved" and offer to refuse the
senders. Taken as they came, those parameters let any link show a logged-in
user "500 messages deleted for good" or "Also refuse future mail from
boss@company?" (the red team's content spoofing). The redirect now carries
`ok=`, an HMAC of the parameters and the session id under the data
directory's web key; the page shows the line only when it matches, so a
link made by someone else, or for another session, shows nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import quote

_LABEL = b"nmail list notice\x00"


def _mac(secret: bytes, session_id: str, done: str, count: int,
         senders: Sequence[str]) -> str:
    text = "\x00".join([session_id, done, str(count), *senders])
    digest = hmac.new(secret, _LABEL + text.encode("utf-8", "surrogatepass"),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode("ascii")


def notice_query(secret: bytes, session_id: str, done: str, count: int,
                 senders: Sequence[str] = ()) -> str:
    """`?done=...&n=...[&offer_reject=...]&ok=...` for the redirect after an action."""
    extra = "".join(f"&offer_reject={quote(s)}" for s in senders)
    ok = _mac(secret, session_id, done, count, senders)
    return f"?done={quote(done)}&n={count}{extra}&ok={ok}"


def genuine(secret: bytes, session_id: str, done: str, count: int,
            senders: Sequence[str], ok: str) -> bool:
    """True when `ok` was made by notice_query for these values and this session."""
    if not done and not senders:
        return False
    return hmac.compare_digest(ok.encode("ascii", "replace"),
                               _mac(secret, session_id, done, count, senders).encode("ascii"))
