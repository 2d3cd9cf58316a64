"""The admin console's first screen: a read-only overview (the console is the next issue).

GET /admin                    the domains the user administers (accounts, storage) and,
                              for the postmaster, the outbound queue
GET /admin/domains/{domain}   one of those domains' accounts with their storage and quota
Same session and CSRF rules as every page (GET only, nothing changes). A user
who administers nothing gets 403; a domain the user does not administer is
404, like another user's folder (web/admin_overview.py decides).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import Response

from nmail.web.admin_overview import administered, domain_accounts, may_administer, overview
from nmail.web.deps import CurrentUser, Pages, User, Web

router = APIRouter()


def _require_admin(user: User) -> None:
    if not may_administer(user.account):
        raise HTTPException(403)


@router.get("/admin")
async def admin_home(request: Request, user: CurrentUser, web: Web, pages: Pages) -> Response:
    _require_admin(user)
    found = await web.run(overview, web.backends, user.account)
    return pages.render(request, "admin.html", section="admin", screen="overview",
                        overview=found, admin_domains=[d.name for d in found.domains])


@router.get("/admin/domains/{domain}")
async def admin_domain(request: Request, domain: str, user: CurrentUser, web: Web,
                       pages: Pages) -> Response:
    _require_admin(user)
    if len(domain) > 253:
        raise HTTPException(404)
    lines = await web.run(domain_accounts, web.backends, user.account, domain)
    if lines is None:
        raise HTTPException(404)
    names = await web.run(administered, web.backends, user.account)
    return pages.render(request, "admin_domain.html", section="admin", screen=domain.lower(),
                        domain=domain.lower(), accounts=lines, admin_domains=names)
