"""The stored messages a compose form names, opened as files and read a part at a time.

A forward (inline or as an attachment, of a stored message or of one attached
inside it) and a draft (reopened, saved, sent) read the original whole and
decoded what they carried into bytes. With a 20 MiB attachment (27 MiB of
base64), the web process's peak RSS grew (the test run on the code before, once per kind):
forward as an attachment 322 MiB (`email` parsed the original and wrote it
again), its form 27; inline forward 108, its form 55; saving the draft 28,
reopening it 81, sending it 26. Now by 2-5 MiB each (tests/test_web_forward_memory.py:
3.9, 2.8; 4.6, 2.7; 4.2, 2.0, 5.2). Here the original stays in its file
(`WebFacade.open_message`, after the folder was found among the user's own): a
message forwarded as an attachment is that file, copied into the outgoing spool
file; an attachment carried along is decoded into an unnamed spool file a piece
at a time (mime/file_parts.py); the form's view reads only the text parts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from typing import IO

from fastapi import HTTPException

from nmail.mime.composing import OutgoingFile
from nmail.mime.file_parts import attached_file, decoded_parts, file_view
from nmail.mime.reading import MessageView
from nmail.web.compose_form import MessageRef
from nmail.web.deps import User, Web
from nmail.web.mail_services import MailServices
from nmail.web.message_open import MAX_UID
from nmail.web.routes.mailbox import own_folder


def spool_files(mail: MailServices) -> Callable[[], IO[bytes]]:
    """Where decoded parts go: unnamed files in the spool directory (a temporary
    directory's when the app has no outbox)."""
    outbox = mail.outbox
    return outbox.spool_file if outbox is not None else tempfile.TemporaryFile


async def message_file(web: Web, user: User, mail: MailServices,
                       ref: MessageRef | None) -> IO[bytes] | None:
    """The message `ref` names, opened (the caller closes it); None when there is none,
    it is not this user's (another account's folder is not found among theirs), or it
    has gone since the form was drawn."""
    if ref is None or not 0 < ref.uid <= MAX_UID:
        return None
    try:
        folder = await own_folder(web, user, ref.folder_id)
    except HTTPException:
        return None
    opened = await web.open_message(user.id, folder.name, ref.uid)
    if opened is None or not ref.path:
        return opened
    try:
        return await web.run(attached_file, opened, ref.path, spool_files(mail))
    finally:
        await web.run(opened.close)


async def message_view(web: Web, user: User, mail: MailServices,
                       ref: MessageRef | None) -> MessageView | None:
    """The read view of the message `ref` names (text parts read, attachments left in
    the file); None as `message_file`."""
    opened = await message_file(web, user, mail, ref)
    if opened is None:
        return None
    try:
        return (await web.run(file_view, opened))[0]
    finally:
        await web.run(opened.close)


async def carried_files(web: Web, user: User, mail: MailServices, ref: MessageRef | None,
                        numbers: tuple[int, ...], keep: ExitStack) -> list[OutgoingFile] | None:
    """The parts `numbers` of the message `ref` names, each decoded into a spool file
    that `keep` closes; None when the message is not there (as `message_file`)."""
    opened = await message_file(web, user, mail, ref)
    if opened is None:
        return None
    try:
        found = await web.run(decoded_parts, opened, numbers, spool_files(mail))
    finally:
        await web.run(opened.close)
    for _info, data in found:
        keep.callback(data.close)
    return [OutgoingFile(info.filename, info.content_type, data) for info, data in found]
