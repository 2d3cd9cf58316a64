"""Folder management: create (nested), rename, delete the user's own folders; subscriptions.

GET /folders, POST /folders/create, /folders/{id}/rename, /folders/{id}/delete,
POST /folders/subscriptions (`listed` = every folder id the form showed,
`shown` = those ticked; only listed folders change, so a folder made in
another tab meanwhile keeps its state). Subscribed folders make the folder
tree; the others fold under "All folders" there (the Inbox always shows).
The special folders (Inbox, Sent, Drafts, Trash, Spam, Archive) cannot be
renamed or deleted. Names use "/" between levels; the mail store refuses
what it cannot hold (BadFolderName, FolderExists), shown as a sentence.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from nmail.mailstore import op_folders
from nmail.mailstore.model import QuotaExceeded, StoreError
from nmail.web.deps import CurrentUser, Pages, User, Web
from nmail.web.folder_views import FOLDER_SEPARATOR, SPECIAL
from nmail.web.i18n import N_
from nmail.web.i18n import gettext as _
from nmail.web.routes.mailbox import mailbox_context, own_folder

router = APIRouter()
_FAILED = N_("The folder could not be changed.")
_REASONS = {
    "FolderExists": N_("A folder with that name exists already."),
    "BadFolderName": N_("That name cannot be used for a folder: avoid . / * % at its ends."),
    "NoSuchFolder": N_("That folder is gone."),
    "FolderProtected": N_("This folder cannot be changed."),
    "QuotaExceeded": N_("You have as many folders as an account may have (%(max)d). "
                        "Delete one first."),
}


async def _page(request: Request, user: User, web: Web, pages: Pages, error: str = "",
                status: int = 200) -> Response:
    context = await mailbox_context(user, web, 0)
    own = [f for f in context["folders"] if not f.special]
    return pages.render(request, "folders.html", status=status, error=error, own=own,
                        saved=request.query_params.get("saved") == "1", **context)


def _reason(exc: StoreError) -> str:
    if isinstance(exc, QuotaExceeded):
        return _(_REASONS["QuotaExceeded"]) % {"max": op_folders.MAX_FOLDERS}
    return _(_REASONS.get(type(exc).__name__, _FAILED))


def _clean(name: str) -> str:
    return FOLDER_SEPARATOR.join(part.strip() for part in name.strip().split(FOLDER_SEPARATOR))


@router.get("/folders")
async def folder_list(request: Request, user: CurrentUser, web: Web, pages: Pages) -> Response:
    return await _page(request, user, web, pages)


@router.post("/folders/create")
async def create(request: Request, user: CurrentUser, web: Web, pages: Pages,
                 name: Annotated[str, Form(max_length=200)] = "",
                 parent: Annotated[str, Form(max_length=10)] = "") -> Response:
    leaf = _clean(name)
    if not leaf:
        return await _page(request, user, web, pages, _("Type a name for the folder."), 400)
    if parent.isdigit():
        above = await own_folder(web, user, int(parent))
        leaf = f"{above.name}{FOLDER_SEPARATOR}{leaf}"
    try:
        await web.create_folder(user.id, leaf)
    except StoreError as exc:
        return await _page(request, user, web, pages, _reason(exc), 400)
    return RedirectResponse("/folders?saved=1", status_code=303)


@router.post("/folders/subscriptions")
async def subscriptions(request: Request, user: CurrentUser, web: Web, pages: Pages,
                        listed: Annotated[list[str] | None, Form()] = None,
                        shown: Annotated[list[str] | None, Form()] = None) -> Response:
    tree = {f.id: f for f in await web.folder_tree(user.id)}
    wanted = {int(v) for v in shown or [] if v.isdigit() and len(v) < 19}
    asked = [int(v) for v in (listed or [])[:10_000] if v.isdigit() and len(v) < 19]
    if any(folder_id not in tree for folder_id in [*asked, *wanted]):
        raise HTTPException(404)  # another user's folder, or one deleted meanwhile
    for folder_id in asked:
        folder = tree[folder_id]
        on = folder_id in wanted or folder.name == "INBOX"
        if folder.subscribed != on:
            try:
                await web.set_subscribed(user.id, folder.name, on)
            except StoreError as exc:
                return await _page(request, user, web, pages, _reason(exc), 400)
    return RedirectResponse("/folders?saved=1", status_code=303)


@router.post("/folders/{folder_id}/rename")
async def rename(request: Request, folder_id: int, user: CurrentUser, web: Web, pages: Pages,
                 name: Annotated[str, Form(max_length=200)] = "") -> Response:
    folder = await own_folder(web, user, folder_id)
    if folder.name in SPECIAL:
        raise HTTPException(403, N_("This folder cannot be changed."))
    new_leaf = _clean(name)
    if not new_leaf:
        return await _page(request, user, web, pages, _("Type a name for the folder."), 400)
    parent, _sep, _old = folder.name.rpartition(FOLDER_SEPARATOR)
    new_name = f"{parent}{FOLDER_SEPARATOR}{new_leaf}" if parent else new_leaf
    try:
        await web.rename_folder(user.id, folder.name, new_name)
    except StoreError as exc:
        return await _page(request, user, web, pages, _reason(exc), 400)
    return RedirectResponse("/folders?saved=1", status_code=303)


@router.post("/folders/{folder_id}/delete")
async def delete(request: Request, folder_id: int, user: CurrentUser, web: Web,
                 pages: Pages) -> Response:
    folder = await own_folder(web, user, folder_id)
    if folder.name in SPECIAL:
        raise HTTPException(403, N_("This folder cannot be changed."))
    try:
        await web.delete_folder(user.id, folder.name)
    except StoreError as exc:
        return await _page(request, user, web, pages, _reason(exc), 400)
    return RedirectResponse("/folders?saved=1", status_code=303)


