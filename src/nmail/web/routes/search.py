"""GET /search: from, to, subject and body, in one folder or everywhere.

The feed room's full-text index (mailstore/search.py: Hangul as bigrams,
so 회의 finds 회의록을) answers which messages match; their list rows come
from the index like any folder page. Results are newest first, 50 a page.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from starlette.responses import Response

from nmail.mailstore.search import QueryError
from nmail.web.deps import CurrentUser, Pages, Web
from nmail.web.folder_views import label_of
from nmail.web.routes.mailbox import mailbox_context, row_view

router = APIRouter()
PAGE = 50
FIELD_CHOICES = {"all": ("from", "to", "subject", "body"), "from": ("from",), "to": ("to",),
                 "subject": ("subject",), "body": ("body",)}


@router.get("/search")
async def search_page(
    request: Request, user: CurrentUser, web: Web, pages: Pages, q: str = "",
    folder: int | None = None, scope: Literal["folder", "all"] = "all",
    field: Literal["all", "from", "to", "subject", "body"] = "all", page: int = 1,
) -> Response:
    page = min(max(page, 1), 2000)
    current = await web.folder(user.id, folder) if folder is not None else None
    folder_id = current.id if current is not None and scope == "folder" else None
    error = ""
    results: list[dict[str, object]] = []
    more = False
    if q.strip():
        try:
            hits = await web.search(user.id, q, folder_id, FIELD_CHOICES[field],
                                    PAGE + 1, (page - 1) * PAGE)
        except QueryError as exc:
            error = str(exc)
            hits = []
        more = len(hits) > PAGE
        hits = hits[:PAGE]
        now = web.backends.clock()
        by_folder: dict[int, list[int]] = {}
        for hit in hits:
            by_folder.setdefault(hit.folder_id, []).append(hit.uid)
        rows = {}
        names = {}
        for fid, uids in by_folder.items():
            info = await web.folder(user.id, fid)
            if info is None:
                continue
            names[fid] = label_of(info.name)
            for row in await web.rows(info, uids):
                rows[(fid, row.uid)] = row
        for hit in hits:
            found = rows.get((hit.folder_id, hit.uid))
            if found is not None:
                view = row_view(found, now, pages.zone)
                view["folder_id"] = hit.folder_id
                view["folder_label"] = names[hit.folder_id]
                results.append(view)
    context = await mailbox_context(user, web, current.id if current else 0)
    return pages.render(
        request, "search.html", search_query=q, results=results, error=error, page=page,
        more=more, scope=scope, field=field, search_folder=current,
        search_folder_label=label_of(current.name) if current else "", **context,
    )
