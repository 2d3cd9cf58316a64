"""The reading and writing rooms' services, built once per app from the web backends.

Routes reach them through the `Mail` dependency; every method here blocks
(SQL, files, delivery) and is called through `WebFacade.run`, never on the
event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from nmail.web.backends import WebBackends
from nmail.web.image_senders import ImageSenders
from nmail.web.outbox import Outbox
from nmail.web.recent_recipients import RecentRecipients
from nmail.web.uploads import Uploads, attachment_limit


@dataclass(frozen=True, slots=True)
class MailServices:
    outbox: Outbox | None  # None when the app was built without the delivery intake
    image_senders: ImageSenders
    uploads: Uploads
    recipients: RecentRecipients
    attachment_limit: int  # bytes of attachments one message may carry
    hostname: str


def build_mail_services(backends: WebBackends) -> MailServices:
    """The read-and-write services, from the platform's WebBackends."""
    config = backends.config
    intake = backends.intake
    return MailServices(
        outbox=(Outbox(intake, backends.store, config.hostname, config.data_dir / "spool")
                if intake is not None else None),
        image_senders=ImageSenders(backends.engine, backends.clock),
        uploads=Uploads(config.data_dir / "webmail-uploads", backends.clock),
        recipients=RecentRecipients(backends.engine),
        attachment_limit=attachment_limit(config.raw, config.smtp.max_message_size),
        hostname=config.hostname,
    )


def get_mail(request: Request) -> MailServices:
    state = request.app.state
    services: MailServices | None = getattr(state, "webmsg", None)
    if services is None:
        services = build_mail_services(state.backends)
        state.webmsg = services
    return services


Mail = Annotated[MailServices, Depends(get_mail)]
