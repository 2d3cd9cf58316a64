"""The address book: list (by group, by text), add/edit, delete, import, export.

GET /contacts, GET /contacts/new, GET /contacts/{id}, POST /contacts/save,
POST /contacts/delete, POST /contacts/import (multipart: ?_csrf=),
GET /contacts/export.csv | /contacts/export.vcf. Ids are checked against
the account (another user's contact is 404).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from starlette.responses import RedirectResponse, Response

from nmail.web.contacts_store import MAX_IMPORT, Contact, ContactError, clean_groups
from nmail.web.deps import CurrentUser, Pages, Web
from nmail.web.i18n import N_
from nmail.web.i18n import gettext as _

router = APIRouter()
_ERRORS = {
    "bad-email": N_("That is not an e-mail address."),
    "too-many": N_("The address book is full."),
    "not-found": N_("That contact is gone."),
    "too-large": N_("The file is too large (at most 1 MB)."),
    "no-email-column": N_("The file has no e-mail column."),
}


@router.get("/contacts")
async def contact_list(request: Request, user: CurrentUser, web: Web, pages: Pages,
                       group: str = "", q: str = "") -> Response:
    entries = await web.settings.contact_list(user.id, group[:60], q[:100])
    return pages.render(request, "contacts.html", section="contacts", contacts=entries,
                        groups=await web.settings.contact_groups(user.id), group=group, q=q,
                        notice=request.query_params.get("notice", ""))


async def _edit_page(request: Request, pages: Pages, web: Web, user: CurrentUser,
                     contact: Contact, error: str = "", status: int = 200) -> Response:
    return pages.render(request, "contact_edit.html", status=status, section="contacts",
                        contact=contact, error=error,
                        groups=await web.settings.contact_groups(user.id))


@router.get("/contacts/new")
async def new_contact(request: Request, user: CurrentUser, web: Web, pages: Pages,
                      email: str = "", name: str = "") -> Response:
    return await _edit_page(request, pages, web, user, Contact(0, name[:200], email[:320]))


@router.get("/contacts/export.{kind}")
async def export_contacts(kind: str, user: CurrentUser, web: Web) -> Response:
    if kind not in ("csv", "vcf"):
        raise HTTPException(404)
    text = await web.settings.export_contacts(user.id, kind)
    media = "text/csv; charset=utf-8" if kind == "csv" else "text/vcard; charset=utf-8"
    body = ("\ufeff" + text) if kind == "csv" else text  # Excel reads UTF-8 CSV with a BOM
    return Response(body.encode("utf-8"), media_type=media, headers={
        "content-disposition": f'attachment; filename="contacts.{kind}"',
        "cache-control": "no-store",
    })


@router.get("/contacts/{contact_id}")
async def edit_contact(request: Request, contact_id: int, user: CurrentUser, web: Web,
                       pages: Pages) -> Response:
    contact = await web.settings.contact(user.id, contact_id)
    if contact is None:
        raise HTTPException(404)
    return await _edit_page(request, pages, web, user, contact)


@router.post("/contacts/save")
async def save_contact(
    request: Request, user: CurrentUser, web: Web, pages: Pages,
    id: Annotated[int, Form()] = 0,
    name: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=320)] = "",
    phone: Annotated[str, Form(max_length=64)] = "",
    company: Annotated[str, Form(max_length=200)] = "",
    groups: Annotated[str, Form(max_length=400)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    contact = Contact(id, name, email, phone, company, clean_groups(groups), note)
    try:
        await web.settings.save_contact(user.id, contact)
    except ContactError as exc:
        if str(exc) == "not-found":
            raise HTTPException(404) from None
        return await _edit_page(request, pages, web, user, contact,
                                _(_ERRORS.get(str(exc), _ERRORS["bad-email"])), 400)
    return RedirectResponse("/contacts?notice=saved", status_code=303)


@router.post("/contacts/delete")
async def delete_contacts(user: CurrentUser, web: Web,
                          id: Annotated[list[int] | None, Form()] = None) -> Response:
    await web.settings.delete_contacts(user.id, list(id or []))
    return RedirectResponse("/contacts?notice=deleted", status_code=303)


@router.post("/contacts/import")
async def import_contacts(request: Request, user: CurrentUser, web: Web, pages: Pages,
                          file: Annotated[UploadFile, File()]) -> Response:
    data = await file.read(MAX_IMPORT + 1)
    try:
        added, skipped = await web.settings.import_contacts(user.id, data)
    except ContactError as exc:
        entries = await web.settings.contact_list(user.id)
        return pages.render(request, "contacts.html", status=400, section="contacts",
                            contacts=entries, groups=await web.settings.contact_groups(user.id),
                            group="", q="", notice="",
                            error=_(_ERRORS.get(str(exc), _ERRORS["no-email-column"])))
    return RedirectResponse(f"/contacts?notice=imported&added={added}&skipped={skipped}",
                            status_code=303)
