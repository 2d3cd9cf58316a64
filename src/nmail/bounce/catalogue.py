"""The return-mail categories: what each means and what to do, in Korean and English.

The seed's webmail had a "return mail" (리턴메일 분석) page listing the
replies its users met, grouped by cause, with an explanation and a remedy.
This is that list as data, written for nmail: the webmail shows one entry
in the panel above a bounce and all of them on its help page, and
`nmail bounce report` names them. The example replies include every one
the seed quoted. The order is the help page's order; `UNKNOWN` is last.
The ids and the record type are in categories.py: the classifier
(rules.py, analysis.py) names categories by id and never needs the words.
"""

from __future__ import annotations

from nmail.bounce.categories import (
    ATTACHMENT,
    DISABLED,
    IP_BLOCKED,
    LOOP,
    MAILBOX_FULL,
    NO_SUCH_USER,
    RBL,
    REJECT_LIST,
    RELAY_DENIED,
    SPAM,
    TEMPORARY,
    TOO_BIG,
    UNKNOWN,
    VIRUS,
    Category,
)

CATEGORIES: tuple[Category, ...] = (
    Category(
        TEMPORARY,
        "일시적인 전송 실패",
        "Temporary delivery failure",
        "받는 쪽 메일 서버에 연결하지 못했거나, 연결 중에 끊겼거나, 서버가 잠시 뒤에 "
        "다시 보내라고 답했습니다. 받는 서버의 장애, 네트워크 문제, DNS(MX) 설정 오류, "
        "처음 보는 발신 서버를 잠시 미루는 그레이리스팅(greylisting)이 흔한 원인입니다. "
        "nmail은 이런 메일을 대기열에 두고 여러 번 다시 보내며, 정해진 기간(기본 약 "
        "5일) 동안 전달하지 못하면 \"The maximum number of delivery attempts has been "
        "reached\"라는 반송 메일을 보냅니다.",
        "The receiving server could not be reached, dropped the connection, or "
        "asked us to try again later. Usual causes: the receiving server is down, "
        "a network problem, a wrong DNS (MX) record for the recipient's domain, or "
        "greylisting (servers that delay mail from senders they have not seen "
        "before). nmail keeps such mail in its queue and retries; when the retry "
        "period runs out (about 5 days by default) the sender gets a bounce saying "
        "\"The maximum number of delivery attempts has been reached\".",
        "잠시 뒤에 다시 보내 보세요. 같은 곳으로 계속 실패하면 받는 사람의 메일 주소 "
        "(특히 @ 뒤의 도메인)가 맞는지 확인하고, 다른 방법(전화 등)으로 받는 사람에게 "
        "그쪽 메일 서버 상태를 확인해 달라고 하세요. 관리자는 `nmail queue list`로 "
        "대기 중인 메일과 마지막 오류를 볼 수 있습니다.",
        "Try again later. If it keeps failing to the same place, check the "
        "recipient's address (especially the domain after @) and ask the "
        "recipient by other means to have their mail server checked. The "
        "administrator sees waiting mail and the last error with "
        "`nmail queue list`.",
        (
            "417 Temporary delivery error",
            "The maximum number of delivery attempts has been reached",
            "End of socket stream data",
            "Invalid server address",
            "Bad server response",
            "451 4.7.1 Greylisting in action, please come back later",
            "421 4.4.2 Connection timed out",
        ),
    ),
    Category(
        NO_SUCH_USER,
        "받는 사람이 존재하지 않음",
        "Recipient does not exist",
        "받는 사람의 메일 서버에 그런 계정이 없습니다. 주소의 철자가 틀렸거나, "
        "계정이 삭제되었거나, @ 뒤의 도메인이 메일을 받지 않는 도메인입니다.",
        "The recipient's mail server has no such mailbox: the address is "
        "misspelt, the account was deleted, or the domain after @ does not "
        "receive mail.",
        "받는 사람의 주소를 한 글자씩 다시 확인하세요(예: naver.com 을 naver.co.kr 로 "
        "쓰지 않았는지). 주소록에 저장된 주소가 틀렸다면 고쳐 두세요. 주소가 맞다면 "
        "받는 사람에게 다른 방법으로 새 주소를 물어보세요. 다시 보내도 같은 결과가 "
        "나옵니다.",
        "Check the address letter by letter (a common slip is the wrong "
        "domain, e.g. naver.co.kr for naver.com) and correct it in your address "
        "book. If it is right, ask the recipient by other means for their "
        "current address. Sending again gives the same result.",
        (
            "550 User unknown",
            "550 Mailbox unavailable",
            "550 5.1.1 No such user",
            "554 delivery error: dd This user doesn't have a yahoo.co.kr account "
            "(userid@domain.com) [-5] - mta114.mail.krs.yahoo.com",
            "550 5.1.1 The email account that you tried to reach does not exist.",
            "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found",
        ),
    ),
    Category(
        DISABLED,
        "받는 사람의 계정이 사용 중지됨",
        "Recipient's account is disabled",
        "받는 사람의 계정은 있지만 사용이 중지되었습니다. 오랫동안 쓰지 않아 휴면 "
        "처리되었거나, 관리자가 정지했거나, 해지된 계정입니다.",
        "The recipient's account exists but is switched off: dormant after a long "
        "time unused, suspended by its administrator, or closed.",
        "받는 사람에게 다른 방법으로 연락해 계정을 다시 쓰게 하거나 새 주소를 "
        "알려 달라고 하세요. 계정이 다시 열리기 전에는 다시 보내도 같은 결과가 나옵니다.",
        "Contact the recipient by other means: they must reactivate the account "
        "or give you a new address. Until then, sending again gives the same result.",
        (
            "550 Account disabled",
            "550 5.1.1 Inactive mbox",
            "550 5.1.1 Suspended user",
            "554 delivery error: dd Sorry your message to userid@domain.com cannot be "
            "delivered. This account has been disabled or discontinued [#102]. - "
            "mta115.mail.krs.yahoo.com",
            "550 5.2.1 The email account that you tried to reach is disabled.",
        ),
    ),
    Category(
        MAILBOX_FULL,
        "받는 사람의 메일함 용량 초과",
        "Recipient's mailbox is full",
        "받는 사람의 메일함이 가득 차서 새 메일을 받을 수 없습니다.",
        "The recipient's mailbox is full and takes no new mail.",
        "받는 사람이 메일함을 비울 때까지 기다렸다가 다시 보내세요. 큰 첨부파일이 "
        "있다면 빼거나 줄여서 보내면 들어갈 수도 있습니다. 급하면 다른 방법으로 받는 "
        "사람에게 알리세요.",
        "Wait until the recipient has made room, then send again; without large "
        "attachments the message may fit. If it is urgent, tell the recipient by "
        "other means.",
        (
            "552 Requested mail action aborted: exceeded storage allocation - "
            "<userid@domain.com>",
            "The recipient's mailbox is full",
            "452 4.2.2 The email account that you tried to reach is over quota.",
            "552 5.2.2 Mailbox full",
        ),
    ),
    Category(
        REJECT_LIST,
        "받는 사람의 수신 거부 설정으로 차단됨",
        "Refused by the recipient's block list",
        "받는 사람이 보낸 사람의 주소나 도메인을 수신 거부(스팸 주소) 목록에 넣어 "
        "두었거나, 받는 사람의 개인 스팸 설정이 이 메일을 막았습니다.",
        "The recipient put your address or domain on their block (reject) list, "
        "or their personal spam settings refused this message.",
        "받는 사람에게 다른 방법으로 연락해 수신 거부 목록에서 빼 달라고 하세요. "
        "실수로 등록된 경우가 많습니다.",
        "Ask the recipient by other means to remove you from their block list; "
        "this is often a mistake on their side.",
        (
            "550 You are registered as spammer (by user's reject list)",
            "554 5.0.0 Service unavailable (userid: mail is denied, by spam filter)",
            "550 5.7.1 Sender address is blocked by the recipient",
        ),
    ),
    Category(
        RELAY_DENIED,
        "발송 권한이 없거나 받는 서버의 설정 문제",
        "Relay denied or no permission to send",
        "메일 서버가 이 메일을 대신 전달할 권한을 주지 않았습니다. 보내는 메일 "
        "프로그램(아웃룩 등)이 SMTP 인증 없이 보냈거나, 받는 쪽 도메인의 MX 레코드가 "
        "그 도메인의 메일을 받지 않는 서버를 가리키고 있습니다.",
        "A mail server refused to pass the message on for you: your mail program "
        "(Outlook, etc.) sent without SMTP authentication, or the recipient "
        "domain's MX record points at a server that does not accept its mail.",
        "메일 프로그램의 보내는 메일 서버(SMTP) 설정에서 '인증 필요'를 켜고 이 서버의 "
        "계정과 비밀번호를 쓰게 하세요(포트 587 권장). 웹메일에서 보낸 메일이 이렇게 "
        "돌아왔다면 받는 쪽 도메인의 설정 문제이니 받는 사람에게 알리세요. 관리자는 "
        "`nmail relay list`로 인증 없이 보낼 수 있는 네트워크를 확인할 수 있습니다.",
        "Turn on \"my outgoing server requires authentication\" in your mail "
        "program and use this server's account and password (port 587). If mail "
        "sent from the webmail came back like this, the recipient's domain is "
        "misconfigured: tell the recipient. The administrator lists the networks "
        "that may send without authentication with `nmail relay list`.",
        (
            "550 Relay denied",
            "554 Relay operation rejected",
            "550 5.7.1 Unable to relay for userid@domain.com",
            "554 5.7.1 <userid@domain.com>: Relay access denied",
        ),
    ),
    Category(
        IP_BLOCKED,
        "대량 발송으로 대형 포털에서 서버 IP를 차단함",
        "Server IP blocked for bulk sending",
        "네이버, 다음(카카오), 야후 같은 대형 메일 서비스가 이 서버의 IP 주소에서 "
        "짧은 시간에 너무 많은 메일이 왔다고 보고 일시적으로 또는 등록 전까지 막았습니다. "
        "이 서버를 쓰는 모든 사용자의 메일이 그 서비스로 가지 못할 수 있습니다.",
        "A large provider (Naver, Daum/Kakao, Yahoo...) saw too much mail from "
        "this server's IP address in a short time and blocks it for a while, or "
        "until the IP is registered. Every user of this server may be affected "
        "for that provider.",
        "사용자: 같은 메일을 많은 사람에게 한꺼번에 보내지 말고, 잠시 뒤에 다시 "
        "보내세요. 관리자: 차단한 곳의 안내 페이지(예: 네이버 realip.naver.com, "
        "다음 cleanip)에 서버 IP를 등록하고, `nmail domain dns DOMAIN`이 알려 주는 "
        "SPF, DKIM, DMARC 레코드를 DNS에 모두 게시하세요. `nmail bounce report`로 "
        "어느 곳에서 언제부터 막혔는지 볼 수 있습니다. 대량 발송이 필요하면 발송량을 "
        "나누어 천천히 보내세요.",
        "Users: do not send one message to many people at once; try again later. "
        "Administrators: register the server's IP with the provider (e.g. "
        "realip.naver.com for Naver, cleanip for Daum), publish the SPF, DKIM "
        "and DMARC records `nmail domain dns DOMAIN` prints, and spread bulk "
        "mailings over time. `nmail bounce report` shows which provider blocks "
        "the server and since when.",
        (
            "550 5.7.1 <userid@domain.com>... Error.your access was denied. Since you "
            "sent too many e-mails,you are not allowed to send more e-mails within 24 "
            "hours.After 24 hours,you can send e-mails as usual.If you did not send "
            "any e-mails,which is considered as a spam,you'd better register",
            "421 4.3.2 Your IP(111.112.113.114) is filtered and this connection will "
            "be closed. You must register your IP to http://realip.naver.com",
            "421 4.3.1 You send too many messages.",
            "5.1.0 - Unknown address error 550-'Transaction failed. "
            "(SPAM_SUSPECT:IP_CONTROL) (http://cleanip.paran.com)'",
            "451 mta113.mail.krs.yahoo.com Resources temporarily unavailable. Please "
            "try again later [#4.16.5].",
            "421 4.7.0 [TSS04] Messages from 111.112.113.114 temporarily deferred due "
            "to unexpected volume or user complaints",
        ),
    ),
    Category(
        RBL,
        "스팸 차단 목록(RBL)에 등록되어 차단됨",
        "Listed on a block list (RBL/DNSBL)",
        "이 서버의 IP 주소가 스팸 발송지 목록(RBL, DNSBL: Spamhaus, Barracuda 등)에 "
        "올라 있어 받는 서버가 거부했습니다. 같은 IP를 쓰던 다른 서버가 스팸을 "
        "보냈거나, 가정용(동적) IP에서 보내고 있거나, 이 서버의 계정이 도용되어 "
        "스팸을 보낸 경우입니다.",
        "This server's IP address is on a spam block list (RBL/DNSBL: Spamhaus, "
        "Barracuda...), so the receiving server refused it. Either the address "
        "sent spam before (perhaps under another owner), it is a dynamic "
        "(home) address, or an account on this server was abused to send spam.",
        "관리자: 거부 메시지에 나온 목록의 조회 페이지에서 서버 IP를 확인하고 삭제를 "
        "요청하세요. 그 전에 `nmail queue list`로 도용된 계정이 스팸을 보내고 있지 "
        "않은지 확인하고, 그런 계정은 비밀번호를 바꾸세요. 가정용 IP라면 통신사의 "
        "메일 서버를 `[relay]`(스마트호스트)로 지정하세요.",
        "Administrators: look the server's IP up on the list named in the reply "
        "and ask for removal. First make sure no hijacked account is sending spam "
        "(`nmail queue list`) and change such passwords. On a dynamic (home) "
        "address, send through your provider's server as the `[relay]` smarthost.",
        (
            "421 4.3.2 Your ip is filtered by RBL "
            "(http://realip.naver.com/rbl/rblinfo.html)(IP:111.112.113.114)"
            "(Caues:http://dsbl.org/listing?111.112.113.114)",
            "553 5.3.0 ... Rejected - see http://www.mail-abuse.org/rbl/",
            "553-mail rejected because your IP is in DUL. See "
            "http://www.mail-abuse.com/enduserinfo.html",
            "554 5.7.1 Service unavailable; Client host [111.112.113.114] blocked "
            "using zen.spamhaus.org",
        ),
    ),
    Category(
        SPAM,
        "받는 서버가 스팸으로 판단해 차단함",
        "Rejected as spam",
        "받는 메일 서버의 스팸 필터가 이 메일의 내용, 제목, 링크나 보낸 서버의 평판을 "
        "보고 스팸이라고 판단했습니다.",
        "The receiving server's spam filter judged this message to be spam, from "
        "its content, subject, links or the sending server's reputation.",
        "광고처럼 보이는 제목(\"(광고)\", 느낌표, 모두 대문자)이나 짧은 주소(URL 단축) "
        "링크, 본문 없이 이미지만 있는 메일을 피하고, 내용을 고쳐 다시 보내세요. "
        "관리자는 `nmail domain dns DOMAIN`의 SPF, DKIM, DMARC 레코드가 모두 게시되어 "
        "있는지 확인하세요.",
        "Avoid subjects that look like advertising, shortened links and mail that "
        "is only an image; reword the message and send it again. Administrators: "
        "check that the SPF, DKIM and DMARC records from `nmail domain dns DOMAIN` "
        "are all published.",
        (
            "553 Blocked for spam",
            "550 5.5.0 Your message was rejected.",
            "550 5.7.1 Message rejected as spam by Content Filtering.",
            "554 5.7.1 [P4] Message blocked due to spam content in the message.",
        ),
    ),
    Category(
        VIRUS,
        "바이러스가 있어 차단됨",
        "Rejected as carrying a virus",
        "받는 메일 서버의 백신이 이 메일이나 첨부파일에서 바이러스(악성 코드)를 "
        "찾았습니다.",
        "The receiving server's virus scanner found malware in the message or an "
        "attachment.",
        "보내는 컴퓨터를 최신 백신으로 검사하고, 첨부파일을 검사한 뒤 다시 보내세요. "
        "보낸 적이 없는 메일이 이렇게 돌아왔다면 계정이 도용되었을 수 있으니 "
        "비밀번호를 바꾸세요.",
        "Scan your computer and the attachment with an up-to-date virus scanner, "
        "then send again. If you never sent this message, your account may have "
        "been hijacked: change your password.",
        (
            "550 Virus in your mail!!!",
            "554 5.7.0 Virus found: Win.Trojan.Agent",
            "550 5.7.1 Message contains a virus (Eicar-Test-Signature)",
        ),
    ),
    Category(
        ATTACHMENT,
        "허용되지 않는 첨부파일",
        "Attachment type not allowed",
        "받는 메일 서버가 이런 종류의 첨부파일(실행파일 .exe, .scr, .bat, 그런 파일이 "
        "든 압축파일 등)을 받지 않습니다. 구글(Gmail)이 대표적입니다.",
        "The receiving server does not accept this kind of attachment "
        "(programs such as .exe, .scr, .bat, or archives containing them); "
        "Gmail is the best-known example.",
        "파일을 클라우드 저장소에 올리고 링크를 보내거나, 파일 이름의 확장자를 바꾸고 "
        "받는 사람에게 알려 주세요. 암호를 건 압축파일도 거부되는 경우가 많습니다.",
        "Share the file through a cloud storage link, or rename its extension and "
        "tell the recipient. Password-protected archives are often refused too.",
        (
            "552 5.7.0 Illegal Attachment 36si248323nzk+I9:I15",
            "552-5.7.0 This message was blocked because its content presents a "
            "potential security issue.",
            "554 5.6.1 Attachment type not allowed (.exe)",
        ),
    ),
    Category(
        LOOP,
        "메일 순환(루프) 감지",
        "Mail loop detected",
        "메일이 서버 사이를 계속 돌고 있어 중단되었습니다. 받는 사람이나 보낸 사람의 "
        "자동 전달(포워딩) 설정이 서로를 가리키거나, 별칭이 자기 자신을 가리키는 "
        "경우입니다.",
        "The message was going round in circles between servers and was stopped: "
        "forwarding set up on the sender's and recipient's side point at each "
        "other, or an alias points back at itself.",
        "자동 전달(포워딩)과 자동 응답 설정을 확인하세요. 받는 사람의 주소가 다시 "
        "이쪽으로 전달되고 있지 않은지 받는 사람에게도 확인을 부탁하세요. 관리자는 "
        "`nmail alias list`로 별칭을 확인하세요.",
        "Check the forwarding and auto-reply settings on both sides; ask the "
        "recipient whether their address forwards back to you. Administrators: "
        "check the aliases with `nmail alias list`.",
        (
            "Mail loop detected",
            "554 Message blocked by mail loop check",
            "554 5.4.6 Too many hops",
            "554 5.4.0 Hop count exceeded - possible mail loop",
        ),
    ),
    Category(
        TOO_BIG,
        "메일 크기가 받는 서버의 허용치를 넘음",
        "Message too big",
        "메일(첨부파일 포함)이 받는 메일 서버가 받아 주는 최대 크기보다 큽니다. "
        "첨부파일은 보낼 때 약 1.37배로 커진다는 점도 기억하세요.",
        "The message, with its attachments, is larger than the receiving server "
        "accepts. Remember that attachments grow by about a third in transit.",
        "첨부파일을 줄이거나(압축, 해상도 낮추기) 여러 통으로 나누어 보내세요. 큰 "
        "파일은 클라우드 저장소 링크로 보내는 것이 좋습니다.",
        "Make the attachments smaller (compress, lower the resolution) or split "
        "the message in several; send large files as a cloud storage link.",
        (
            "Message size excedes the server limit",
            "552 Message exceeds fixed maximum message size",
            "552 5.3.4 Message size exceeds fixed limit",
            "552 5.2.3 Your message exceeded Google's message size limits.",
        ),
    ),
    Category(
        UNKNOWN,
        "알 수 없는 원인",
        "Unknown cause",
        "반송 메일의 내용으로는 원인을 분류하지 못했습니다. 아래에 받는 서버의 응답을 "
        "그대로 보여 드립니다.",
        "The cause could not be told from the returned message; the remote "
        "server's reply is shown below as it came.",
        "아래 응답 내용을 확인하세요. 숫자가 5로 시작하면(5xx) 다시 보내도 실패하고, "
        "4로 시작하면(4xx) 잠시 뒤 다시 보내면 될 수 있습니다. 해결되지 않으면 이 "
        "반송 메일을 관리자에게 전달하세요.",
        "Read the reply below. A code starting with 5 (5xx) means sending again "
        "will fail too; one with 4 (4xx) may work later. If it does not, forward "
        "this returned message to your administrator.",
        (),
    ),
)

_BY_ID = {category.id: category for category in CATEGORIES}


def category(category_id: str) -> Category:
    """The category with this id; `UNKNOWN`'s entry for an id that is not one."""
    return _BY_ID.get(category_id, _BY_ID[UNKNOWN])


def category_ids() -> tuple[str, ...]:
    """Every category id, in the help page's order."""
    return tuple(c.id for c in CATEGORIES)
