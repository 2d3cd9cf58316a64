"""The human-readable part of delivery notices, in Korean and English.

The English sentences keep XMail's wording ("Error sending message [...]
from [...]", "The maximum number of delivery attempts has been reached")
because the seed's return-mail guide, and its users, know them.
"""

from __future__ import annotations

EXPIRED = "The maximum number of delivery attempts has been reached"
EXPIRED_KO = "최대 전송 시도 기간이 지나 더 이상 보내지 않습니다"
ADMIN_BOUNCE = "The message was returned by the mail server administrator"
ADMIN_BOUNCE_KO = "메일 서버 관리자가 이 메일을 반송했습니다"

INTRO = (
    "이 메일은 메일 서버({mta})에서 자동으로 보낸 알림입니다.\n"
    "This is an automatically generated notice from the mail server {mta}.\n"
)

LEAD = {
    "failed": (
        "보내신 메일을 아래 받는 사람에게 전달하지 못했습니다.\n"
        "Your message could not be delivered to the recipient(s) below.\n"
    ),
    "delayed": (
        "보내신 메일이 아직 전달되지 않았습니다. 메일 서버가 {until} 까지 계속 시도합니다.\n"
        "다시 보내실 필요는 없습니다.\n"
        "Your message has not been delivered yet. The server will keep trying\n"
        "until {until}. You do not need to send it again.\n"
    ),
    "relayed": (
        "보내신 메일을 아래 받는 사람의 메일 서버로 넘겼습니다. 그 서버는 배달 결과를\n"
        "알려 주지 않습니다.\n"
        "Your message was relayed to the recipient's mail server below, which does\n"
        "not report delivery.\n"
    ),
    "delivered": (
        "보내신 메일을 아래 받는 사람에게 전달했습니다.\n"
        "Your message was delivered to the recipient(s) below.\n"
    ),
}

HEADLINE = "Error sending message [{id}] from [{domain}]."

RECIPIENT_BLOCK = (
    "ID:        {id}\n"
    "Mail From: <{sender}>\n"
    "Rcpt To:   <{rcpt}>\n"
    "Server:    {server}\n"
)

REASON = "실패 원인 / The reason of the delivery failure was:\n{reason}\n"
LAST_REPLY = "마지막 응답 / The last reply was:\n{reason}\n"

ATTACHED_HEADERS = (
    "원본 메일의 헤더를 첨부합니다.\n"
    "The headers of your original message are attached.\n"
)
ATTACHED_MESSAGE = (
    "원본 메일을 첨부합니다.\n"
    "Your original message is attached.\n"
)
ATTACHED_BEGINNING = (
    "원본 메일({size})이 커서 앞부분({quoted})만 첨부합니다.\n"
    "Your original message ({size}) is large: only its beginning ({quoted}) is attached.\n"
)

SUBJECTS = {
    "failed": "Error sending message [{id}] from [{domain}]",
    "delayed": "Delivery delayed: message [{id}] from [{domain}]",
    "relayed": "Delivery status: message [{id}] relayed",
    "delivered": "Delivery status: message [{id}] delivered",
}
