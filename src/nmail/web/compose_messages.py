"""What the compose form says when a send, a save or an upload is refused.

The sentences of web/routes/compose_send.py's refusals, in the user's
language: a field that is not valid, a group name that is no group, an
address delivery refused (with the server's words after), staged uploads
that are full. A room of their own: they are wording, not handling, and
compose_send.py was near its 400-line limit.
"""

from __future__ import annotations

from nmail.mime.composing import ComposeError
from nmail.web.i18n import gettext as _
from nmail.web.mail_services import MailServices
from nmail.web.outbox import Refusal
from nmail.web.recipient_groups import GroupError
from nmail.web.templating import human_size
from nmail.web.uploads import STAGED_MESSAGES


def field_message(error: ComposeError) -> str:
    """What is wrong with a field of the form (the label in the user's language)."""
    names = {"to": _("To"), "cc": _("Cc"), "bcc": _("Bcc"), "subject": _("Subject"),
             "body": _("Message"), "attachment": _("Attachments"), "from": _("From")}
    label = names.get(error.field, error.field)
    text = str(error)
    if text == "no recipient":
        return _("Add at least one recipient.")
    if "must be one line" in text:
        return _("%(field)s must be a single line.") % {"field": label}
    if "too long" in text or "longer than" in text:
        return _("%(field)s is too long.") % {"field": label}
    return _("%(field)s: this address is not valid: %(detail)s") % {
        "field": label, "detail": text.split(":", 1)[-1].strip()}


def group_message(error: GroupError) -> str:
    """A name in To/Cc/Bcc that is neither an address nor a group with members."""
    return _("“%(name)s” is neither an address nor a group of your address book with members "
             "(it may have been deleted). Nothing was sent.") % {"name": error.name}


def refusal_text(refusal: Refusal) -> str:
    """Why delivery refused an address, in the user's language (the server's words after)."""
    address = refusal.address
    if refusal.code == 553 or (refusal.status == "5.7.1" and "not owned" in refusal.text):
        said = _("You may not send as %(address)s.")
    else:
        said = {
            "5.1.1": _("There is no mailbox %(address)s."),
            "5.1.3": _("%(address)s is not a valid address."),
            "5.2.1": _("The mailbox %(address)s does not accept mail."),
            "5.2.2": _("The mailbox %(address)s is full."),
            "5.7.1": _("%(address)s does not accept your mail."),
        }.get(refusal.status, "%(address)s:" if address else "")
    detail = " ".join(x for x in (str(refusal.code), refusal.status, refusal.text) if x)
    return f"{said % {'address': address}} ({detail})".strip()


def quota_text(reason: str, mail: MailServices) -> str:
    """Why a user's staged uploads are full, and what to do about it."""
    if reason == "files":
        bound = _("You have %(count)d attachments waiting in unsent messages.") % {
            "count": mail.uploads.max_files}
    else:
        limit = mail.uploads.max_bytes or STAGED_MESSAGES * mail.attachment_limit
        bound = _("You have %(size)s of attachments waiting in unsent messages.") % {
            "size": human_size(limit)}
    return bound + " " + _("Send or discard a message first; attachments never sent are "
                           "removed after a day.")
