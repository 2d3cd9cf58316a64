"""Remote images are shown only when the user asked on our own pages.

"Show images" is a link to the read screen with `?images=1`. Taken as it came,
another site's link to `/mail/F/U?images=1` (or straight to its `/body` frame
or `/print` view) made the browser fetch the sender's tracking images: a web
beacon that confirms the read and gives away the address. So:

- a read screen honours `?images=1` only when `guard.from_own_pages` says the
  request came from our pages (or was typed);
- the body frame and the print view it links to carry, instead, `?show=` an HMAC
  of the session, the folder, the uid and the attached-message path under the
  data directory's web key with a label of its own (the list notices and the
  login form use other labels). The frame is requested by our page's iframe
  with no Referer, and over plain HTTP Chromium sends no Fetch Metadata, so the
  frame cannot judge its own request: only the token says our page made it.
  A token for another message or another session shows nothing.

`remote_asked` is the one check every route calls; the sender being trusted
("always show from ...") is checked by the routes as before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from starlette.requests import Request

from nmail.web.deps import User
from nmail.web.facade import WebFacade
from nmail.web.guard import from_own_pages

PARAM = "show"
_LABEL = b"nmail show remote images\x00"


def _mac(secret: bytes, session_id: str, folder_id: int, uid: int, path: str) -> str:
    text = "\x00".join([session_id, str(folder_id), str(uid), path])
    digest = hmac.new(secret, _LABEL + text.encode("utf-8", "surrogatepass"),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode("ascii")


def images_query(web: WebFacade, user: User, folder_id: int, uid: int,
                 path: str = "") -> str:
    """`?show=...` for the frame and print URLs of a screen that shows remote images."""
    return f"?{PARAM}={_mac(web.image_key, user.session.id, folder_id, uid, path)}"


def remote_asked(request: Request, web: WebFacade, user: User, folder_id: int, uid: int,
                 path: str = "", *, images: int = 0) -> bool:
    """Did the user ask on our own pages to see this message's remote images?

    A read screen passes its `?images=`, taken only from our own pages; every view
    takes a `?show=` token made by images_query for this session and message."""
    given = request.query_params.get(PARAM, "")
    if given and hmac.compare_digest(
            given.encode("ascii", "replace"),
            _mac(web.image_key, user.session.id, folder_id, uid, path).encode("ascii")):
        return True
    return bool(images) and from_own_pages(request.scope)
