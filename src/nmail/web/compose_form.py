"""The compose form: what it starts with (new, reply, forward, draft) and what it sends.

Pure: the routes read the original message and the user's settings, this
turns them into the form's fields, and the posted fields back into an
`Outgoing` (every value checked by `mime.composing`, so a bad address or a
subject with a line break is a `ComposeError` naming the field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import IO

from nmail.mime.composing import (
    MAX_SUBJECT,
    Address,
    ComposeError,
    Outgoing,
    OutgoingFile,
    check_text,
    parse_recipients,
)
from nmail.mime.reading import MessageView
from nmail.mime.replying import (
    forward_subject,
    forwarded_text,
    html_to_plain,
    quoted_text,
    reply_recipients,
    reply_subject,
    thread_references,
)
from nmail.web.message_html import sanitize_html
from nmail.web.plain_text import BIDI_CONTROLS

MAX_BODY = 2 * 1024 * 1024  # characters of text a user may send


@dataclass(frozen=True, slots=True)
class ComposeState:
    """The fields of the compose form (as text the user edits) and hidden context."""

    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body: str = ""
    in_reply_to: str = ""
    references: str = ""  # space separated message ids
    original: str = ""  # "<folder id>/<uid>/<mark>": the message to mark after sending
    # A message reference (MessageRef): "<folder id>/<uid>", or "<folder id>/<uid>/msg/<path>"
    # for a message attached inside that one (the path of its read URL).
    attach_message: str = ""  # forwarded as an attachment
    carry_from: str = ""  # a message whose attachments go along
    carry_parts: tuple[int, ...] = ()  # which of its parts (forward inline, a draft's own)
    draft: str = ""  # the Drafts uid this form replaces when saved or sent
    uploads: tuple[str, ...] = field(default_factory=tuple)  # tokens of staged attachments
    rich: bool = False
    # What the form is for, for its heading: "reply", "forward" or "" (new, draft). Kept
    # apart from `original`, which is empty when what is answered is not stored (an
    # attached message) and so marks nothing.
    kind: str = ""


@dataclass(frozen=True, slots=True)
class Wording:
    """Translated words that go into a reply or forward body."""

    wrote: str  # "%(date)s, %(name)s wrote:" already filled in
    forwarded: str  # "Forwarded message"
    labels: dict[str, str]  # from, date, subject, to, cc, date_value


def shown(pairs: tuple[Address, ...] | list[Address]) -> str:
    """Addresses as the user edits them: `Name <a@b>, c@d`."""
    out = []
    for name, address in pairs:
        name = BIDI_CONTROLS.sub("", name)  # a text field cannot isolate a name's overrides
        if name:
            quoted = name if not any(ch in name for ch in ',;<>"@') else (
                '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"')
            out.append(f"{quoted} <{address}>")
        else:
            out.append(address)
    return ", ".join(out)


def with_signature(body: str, signature: str) -> str:
    """The signature below an empty body or above a quote, after the "-- " line."""
    if not signature.strip():
        return body
    return "\n\n-- \n" + signature.replace("\r\n", "\n").strip("\n") + body


def reply_state(view: MessageView, folder_id: int, uid: int, own: set[str], *, to_all: bool,
                wording: Wording, signature: str) -> ComposeState:
    to, cc = reply_recipients(view, own, to_all=to_all)
    return ComposeState(
        to=shown(to), cc=shown(cc), subject=reply_subject(view.subject),
        body=with_signature(quoted_text(view, wording.wrote), signature),
        in_reply_to=view.message_id, references=" ".join(thread_references(view)),
        original=f"{folder_id}/{uid}/answered", kind="reply",
    )


def forward_state(view: MessageView, folder_id: int, uid: int, *, attached: bool,
                  wording: Wording, signature: str, path: str = "") -> ComposeState:
    """A forward of the stored message `uid`, or (`path`) of a message attached inside it,
    which is not stored and so is marked $Forwarded nowhere."""
    body = "" if attached else forwarded_text(view, wording.forwarded, wording.labels)
    ref = str(MessageRef(folder_id, uid, path))
    return ComposeState(
        subject=forward_subject(view.subject), body=with_signature(body, signature),
        references=" ".join(thread_references(view)),
        original="" if path else f"{folder_id}/{uid}/forwarded",
        attach_message=ref if attached else "",
        carry_from="" if attached else ref,
        carry_parts=() if attached else _own_attachments(view), kind="forward",
    )


def draft_state(view: MessageView, folder_id: int, uid: int) -> ComposeState:
    return ComposeState(
        carry_from=f"{folder_id}/{uid}", carry_parts=_own_attachments(view),
        to=shown(view.to), cc=shown(view.cc), bcc=shown(view.bcc), subject=view.subject,
        body=view.text or html_to_plain(view.html), in_reply_to=view.in_reply_to,
        references=" ".join(view.references), draft=str(uid),
    )


def outgoing(state: ComposeState, sender: Address, *, html: str = "",
             files: tuple[OutgoingFile, ...] = (),
             attached: tuple[bytes | IO[bytes], ...] = (),
             require_recipient: bool = True) -> Outgoing:
    """The message the form describes; ComposeError for the first bad field."""
    to = parse_recipients(state.to, "to")
    cc = parse_recipients(state.cc, "cc")
    bcc = parse_recipients(state.bcc, "bcc")
    if require_recipient and not (to or cc or bcc):
        raise ComposeError("to", "no recipient")
    if len(state.body) > MAX_BODY:
        raise ComposeError("body", "the text is too long")
    text = state.body
    markup = ""
    if state.rich and html.strip():
        # The user's own HTML, sanitized all the same: it is shown to the
        # recipients and to this user again from Sent.
        markup = sanitize_html(html[:MAX_BODY], allow_remote=True).html
        text = html_to_plain(markup)
    references = tuple(ref for ref in state.references.split() if ref)[-20:]
    return Outgoing(
        sender=sender, to=to, cc=cc, bcc=bcc,
        subject=check_text(state.subject, "subject", MAX_SUBJECT),
        text=text, html=markup, in_reply_to=state.in_reply_to.strip(),
        references=references, files=files, attached_messages=attached,
    )


def _own_attachments(view: MessageView) -> tuple[int, ...]:
    return tuple(a.number for a in view.attachments if not a.inline)


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A message the form names: a stored one, or (`path`, "2" or "2.1") one attached
    inside it. Parsed from what the browser posts, so nothing here is trusted: the
    folder and uid are then looked up under the user's account and the path by
    mime.reading.attached_message, which bounds it."""

    folder_id: int
    uid: int
    path: str = ""

    def __str__(self) -> str:
        stored = f"{self.folder_id}/{self.uid}"
        return f"{stored}/msg/{self.path}" if self.path else stored


_MESSAGE_REF = re.compile(r"([0-9]{1,18})/([0-9]{1,18})(?:/msg/([0-9][0-9.]{0,39}))?")


def parse_message_ref(value: str) -> MessageRef | None:
    """The reference in a hidden field, None when absent or malformed."""
    found = _MESSAGE_REF.fullmatch(value)
    if found is None:
        return None
    return MessageRef(int(found.group(1)), int(found.group(2)), found.group(3) or "")


def parse_original(value: str) -> tuple[int, int, str] | None:
    """(folder id, uid, mark) from the hidden field, None when absent or malformed."""
    parts = value.split("/")
    if len(parts) not in (2, 3) or not all(p.isdigit() and len(p) < 19 for p in parts[:2]):
        return None
    mark = parts[2] if len(parts) == 3 else ""
    if mark not in ("", "answered", "forwarded"):
        return None
    return int(parts[0]), int(parts[1]), mark
