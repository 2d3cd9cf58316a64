"""Writes the bounce fixture corpus: one .eml per case and expected.json.

Run from the repository root: `python tests/data/bounces/generate.py`.
The formats below are written after the shapes real servers use (Postfix,
Sendmail, Exim, qmail, Exchange, Gmail, Yahoo, XMail, Naver, Daum, Nate and
nmail's own notices); the wording of each is ours. Every reply the seed's
return-mail guide quotes appears in at least one case.
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "src"))

from nmail.bounce.dsn import DsnFacts, RecipientReport, build_dsn  # noqa: E402

SENDER = "kim@nmail-demo.kr"
DATE = "Sun, 06 Dec 2026 10:42:17 +0900"
B = "----=_bounce_7f3a9c"


def original(rcpt: str, subject: str, msgid: str) -> str:
    return (
        f"Return-Path: <{SENDER}>\n"
        f"Received: from [10.0.0.7] by mail.nmail-demo.kr with ESMTPSA; {DATE}\n"
        f"From: =?UTF-8?B?6rmA7LKg7IiY?= <{SENDER}>\n"
        f"To: <{rcpt}>\n"
        f"Subject: {subject}\n"
        f"Date: {DATE}\n"
        f"Message-ID: <{msgid}>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
    )


def crlf(text: str, charset: str = "utf-8") -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode(charset)


def dsn_part(rcpt: str, status: str, reply: str, mta: str, remote: str,
             action: str = "failed") -> str:
    remote_line = f"Remote-MTA: dns; {remote}\n" if remote else ""
    diag = f"Diagnostic-Code: smtp; {reply}\n" if reply else ""
    return (
        f"Reporting-MTA: dns; {mta}\n"
        f"Arrival-Date: {DATE}\n\n"
        f"Final-Recipient: rfc822; {rcpt}\n"
        f"Original-Recipient: rfc822;{rcpt}\n"
        f"Action: {action}\n"
        f"Status: {status}\n"
        f"{remote_line}{diag}"
        f"Last-Attempt-Date: Sun, 06 Dec 2026 10:42:19 +0900\n"
    )


def postfix(c: dict[str, str]) -> bytes:
    r, reply, host = c["rcpt"], c["reply"], c["host"]
    wrapped = reply if len(reply) < 60 else reply[:60] + "\n    " + reply[60:]
    return crlf(
        "Return-Path: <>\n"
        "From: MAILER-DAEMON@mail.nmail-demo.kr (Mail Delivery System)\n"
        f"To: {SENDER}\nSubject: Undelivered Mail Returned to Sender\nDate: {DATE}\n"
        "Auto-Submitted: auto-replied\nMIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status;\n\tboundary="{B}"\n\n'
        f"This is a MIME-encapsulated message.\n\n--{B}\n"
        "Content-Description: Notification\nContent-Type: text/plain; charset=us-ascii\n\n"
        "This is the mail system at host mail.nmail-demo.kr.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients. It's attached below.\n\n"
        "For further assistance, please send mail to postmaster.\n\n"
        "                   The mail system\n\n"
        f"<{r}>: host {host}[203.0.113.25] said: {wrapped} (in reply to\n    RCPT TO command)\n\n"
        f"--{B}\nContent-Description: Delivery report\nContent-Type: message/delivery-status\n\n"
        + dsn_part(r, c["status"], reply, "mail.nmail-demo.kr", host)
        + f"\n--{B}\nContent-Description: Undelivered Message Headers\n"
        "Content-Type: text/rfc822-headers\n\n"
        + original(r, c["subject"], c["msgid"]) + f"\n--{B}--\n"
    )


def postfix_text(c: dict[str, str]) -> bytes:
    r, reply, host = c["rcpt"], c["reply"], c["host"]
    return crlf(
        "Return-Path: <>\n"
        "From: MAILER-DAEMON@relay.example.net (Mail Delivery System)\n"
        f"To: {SENDER}\nSubject: Undelivered Mail Returned to Sender\nDate: {DATE}\n\n"
        "This is the mail system at host relay.example.net.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n\n"
        f"<{r}>: host {host}[198.51.100.7] said: {reply}\n    (in reply to end of DATA command)\n\n"
        "------ Original message headers ------\n"
        + original(r, c["subject"], c["msgid"])
    )


def sendmail(c: dict[str, str]) -> bytes:
    r, reply, host = c["rcpt"], c["reply"], c["host"]
    return crlf(
        "Return-Path: <>\n"
        "From: Mail Delivery Subsystem <MAILER-DAEMON@smtp.example.org>\n"
        f"To: <{SENDER}>\nSubject: Returned mail: see transcript for details\nDate: {DATE}\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status;\n\tboundary="{B}"\n\n'
        f"--{B}\n\n"
        "The original message was received at Sun, 6 Dec 2026 10:42:10 +0900\n"
        "from [10.0.0.7]\n\n"
        "   ----- The following addresses had permanent fatal errors -----\n"
        f"<{r}>\n    (reason: {reply})\n\n"
        "   ----- Transcript of session follows -----\n"
        f"... while talking to {host}.:\n>>> RCPT To:<{r}>\n<<< {reply}\n"
        f"{reply}\n\n--{B}\nContent-Type: message/delivery-status\n\n"
        + dsn_part(r, c["status"], reply, "smtp.example.org", host)
        + f"\n--{B}\nContent-Type: message/rfc822\n\n"
        + original(r, c["subject"], c["msgid"]) + "\nHello.\n" + f"\n--{B}--\n"
    )


def sendmail_text(c: dict[str, str]) -> bytes:
    r, reply, host = c["rcpt"], c["reply"], c["host"]
    return crlf(
        "From: Mail Delivery Subsystem <MAILER-DAEMON@old.example.org>\n"
        f"To: <{SENDER}>\nSubject: Returned mail: User unknown\nDate: {DATE}\n\n"
        "The original message was received at Sun, 6 Dec 2026 10:42:10 +0900\n\n"
        "   ----- Transcript of session follows -----\n"
        f"... while talking to {host}.:\n>>> DATA\n<<< {reply}\n"
        f"{reply.split(' ', 1)[0]} <{r}>... {reply.split(' ', 1)[-1]}\n\n"
        "   ----- Unsent message follows -----\n"
        + original(r, c["subject"], c["msgid"]) + "\nHello.\n"
    )


def exim(c: dict[str, str]) -> bytes:
    r, reply, host = c["rcpt"], c["reply"], c["host"]
    return crlf(
        "Return-path: <>\n"
        "From: Mail Delivery System <Mailer-Daemon@mx.example.com>\n"
        f"To: {SENDER}\nSubject: Mail delivery failed: returning message to sender\n"
        f"X-Failed-Recipients: {r}\nAuto-Submitted: auto-replied\nDate: {DATE}\n\n"
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        f"  {r}\n    host {host} [192.0.2.44]\n"
        f"    SMTP error from remote mail server after RCPT TO:<{r}>:\n    {reply}\n\n"
        "------ This is a copy of the message, including all the headers. ------\n\n"
        + original(r, c["subject"], c["msgid"]) + "\nHello.\n"
    )


def qmail(c: dict[str, str]) -> bytes:
    r, reply, host = c["rcpt"], c["reply"], c["host"]
    return crlf(
        "Return-Path: <>\n"
        f"From: MAILER-DAEMON@{host}\nTo: {SENDER}\nSubject: failure notice\nDate: {DATE}\n\n"
        f"Hi. This is the qmail-send program at {host}.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        f"<{r}>:\n192.0.2.61 does not like recipient.\nRemote host said: {reply}\n"
        "Giving up on 192.0.2.61.\n\n"
        "--- Below this line is a copy of the message.\n\n"
        + original(r, c["subject"], c["msgid"]) + "\nHello.\n"
    )


def yahoo(c: dict[str, str]) -> bytes:
    r, reply = c["rcpt"], c["reply"]
    return crlf(
        "From: MAILER-DAEMON@yahoo.com\n"
        f"To: {SENDER}\nSubject: Failure Notice\nDate: {DATE}\n\n"
        "Sorry, we were unable to deliver your message to the following address.\n\n"
        f"<{r}>:\nRemote host said: {reply} [RCPT_TO]\n\n"
        "--- Below this line is a copy of the message.\n\n"
        + original(r, c["subject"], c["msgid"]) + "\nHello.\n"
    )


def exchange(c: dict[str, str]) -> bytes:
    r, reply, host = c["rcpt"], c["reply"], c["host"]
    html = (
        "<html><body><p><b><font color=\"#000066\">Delivery has failed to these recipients "
        f"or groups:</font></b></p><p><a href=\"mailto:{r}\">{r}</a><br>The recipient's "
        "mail server rejected your message.</p><p><b>Diagnostic information for "
        f"administrators:</b></p><p>Generating server: EXCH01.corp.example<br><br>{r}<br>"
        f"{host}<br>Remote Server returned '{reply}'</p></body></html>"
    )
    return crlf(
        "From: Microsoft Outlook <postmaster@corp.example>\n"
        f"To: <{SENDER}>\nSubject: Undeliverable: {c['subject']}\nDate: {DATE}\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status;\n\tboundary="{B}"\n\n'
        f"--{B}\nContent-Type: multipart/alternative; boundary=\"{B}alt\"\n\n"
        f"--{B}alt\nContent-Type: text/html; charset=us-ascii\n\n{html}\n--{B}alt--\n\n"
        f"--{B}\nContent-Type: message/delivery-status\n\n"
        + dsn_part(r, c["status"], reply, "EXCH01.corp.example", host)
        + f"\n--{B}\nContent-Type: text/rfc822-headers\n\n"
        + original(r, c["subject"], c["msgid"]) + f"\n--{B}--\n"
    )


def exchange_text(c: dict[str, str]) -> bytes:
    r, reply = c["rcpt"], c["reply"]
    return crlf(
        "From: postmaster@mail.example.co.kr\n"
        f"To: {SENDER}\nSubject: Undeliverable: {c['subject']}\nDate: {DATE}\n\n"
        "Delivery has failed to these recipients or groups:\n\n"
        f"{r} ({r})\nYour message wasn't delivered to this recipient.\n\n"
        "Diagnostic information for administrators:\n\n"
        "Generating server: MAIL01.mail.example.co.kr\n\n"
        f"{r}\n#{reply} ##\n\n"
        "Original message headers:\n\n" + original(r, c["subject"], c["msgid"])
    )


def gmail(c: dict[str, str]) -> bytes:
    r, reply, host = c["rcpt"], c["reply"], c["host"]
    return crlf(
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
        f"To: {SENDER}\nSubject: Delivery Status Notification (Failure)\nDate: {DATE}\n"
        "Auto-Submitted: auto-replied\nMIME-Version: 1.0\n"
        f'Content-Type: multipart/report; boundary="{B}"; report-type=delivery-status\n\n'
        f"--{B}\nContent-Type: text/plain; charset=\"UTF-8\"\n\n"
        "** Message not delivered **\n\n"
        f"Your message wasn't delivered to {r} because the remote server refused it.\n\n"
        f"The response was:\n{reply}\n\n"
        f"--{B}\nContent-Type: message/delivery-status\n\n"
        + dsn_part(r, c["status"], reply, "mail-sor-f41.google.com", host)
        + f"\n--{B}\nContent-Type: message/rfc822\n\n"
        + original(r, c["subject"], c["msgid"]) + "\nHello.\n" + f"\n--{B}--\n"
    )


def xmail(c: dict[str, str]) -> bytes:
    r, reply, host = c["rcpt"], c["reply"], c["host"]
    return crlf(
        "From: <MAILER-DAEMON@nmail-demo.kr>\n"
        f"To: <{SENDER}>\nSubject: Error sending message [1730001.1234.mail] from "
        f"[nmail-demo.kr]\nX-MailerError: Message = [1730001.1234.mail] Server = [{host}]\n"
        f"Date: {DATE}\n\n"
        f"[<00>] XMail bounce: Rcpt=[{r}];Error=[{reply}]\n\n"
        "[<01>] Error sending message [1730001.1234.mail] from [nmail-demo.kr].\n\n"
        f"ID:        <S3C2A1@nmail-demo.kr>\nMail From: <{SENDER}>\nRcpt To:   <{r}>\n"
        f"Server:    <{host}> [203.0.113.9]\n\n"
        f"[<02>] The reason of the delivery failure was:\n\n{reply}\n\n"
        "[<05>] Here is listed the initial part of the message:\n\n"
        + original(r, c["subject"], c["msgid"]) + "\nHello.\n"
    )


def nmail(c: dict[str, str]) -> bytes:
    r, reply, host = c["rcpt"], c["reply"], c["host"]
    orig = crlf(original(r, c["subject"], c["msgid"]) + "\nHello.\n")
    facts = DsnFacts("0a1b2c3d4e5f", SENDER, 1796521337.0, orig)
    report = RecipientReport(r, "failed", c["status"], reply, host or None, 1796521339.0)
    return build_dsn(facts, [report], reporting_mta="mail.nmail-demo.kr", now=1796521340.0)


def naver(c: dict[str, str]) -> bytes:
    r, reply = c["rcpt"], c["reply"]
    reason = c.get("reason_ko", "받는 메일 서버가 메일을 거부했습니다.")
    html = (
        "<html><body><div style=\"font-size:14px\"><h2>메일이 전송되지 못했습니다.</h2>"
        f"<p>보내신 메일이 받는 사람에게 전달되지 못했습니다.</p><table>"
        f"<tr><th>받는 사람</th><td>{r}</td></tr>"
        f"<tr><th>실패 사유</th><td>{reason}</td></tr>"
        f"<tr><th>상세 정보</th><td>{reply}</td></tr>"
        "</table></div></body></html>\n"
    )
    body = base64.encodebytes(html.encode("utf-8")).decode("ascii")
    return crlf(
        "From: =?UTF-8?B?64Sk7J2067KEIOuplOydvA==?= <MAILER-DAEMON@naver.com>\n"
        f"To: {SENDER}\nSubject: =?UTF-8?B?W+uEpOydtOuyhCDrqZTsnbxdIOuplOydvCDrsJzshqEg7Iuk7Yyo?=\n"
        f"Date: {DATE}\nMIME-Version: 1.0\n"
        "Content-Type: text/html; charset=UTF-8\nContent-Transfer-Encoding: base64\n\n" + body
    )


def daum(c: dict[str, str]) -> bytes:
    r, reply = c["rcpt"], c["reply"]
    reason = c.get("reason_ko", "받는 메일 서버가 메일을 거부했습니다.")
    text = (
        "Daum 메일 발송 실패 안내\n\n"
        "죄송합니다. 보내신 메일을 받는 사람에게 전달하지 못했습니다.\n\n"
        f"받는 사람: {r}\n"
        f"실패 원인: {reason}\n"
        f"서버 응답: {reply}\n\n"
        "----- 원본 메일 -----\n" + original(r, c["subject"], c["msgid"])
    )
    return crlf(
        "From: \"Mail Delivery System\" <mailer-daemon@hanmail.net>\n"
        f"To: {SENDER}\nSubject: =?EUC-KR?B?uN7AzyC537zbIL3HxtAgvsizuw==?=\n"
        f"Date: {DATE}\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=euc-kr\nContent-Transfer-Encoding: 8bit\n\n",
    ) + crlf(text, "cp949")


def nate(c: dict[str, str]) -> bytes:
    r, reply, host = c["rcpt"], c["reply"], c["host"]
    reason = c.get("reason_ko", "받는 메일 서버가 메일을 거부했습니다.")
    text = (
        "네이트 메일에서 알려드립니다.\n\n"
        f"{r} 님에게 보낸 메일이 전달되지 못하고 반송되었습니다.\n"
        f"{reason}\n\n응답: {reply}\n"
    )
    return crlf(
        "From: NATE Mail <postmaster@nate.com>\n"
        f"To: {SENDER}\nSubject: =?UTF-8?B?66mU7J28IOuwmOyGoSDslYjrgrQ=?=\nDate: {DATE}\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{B}"\n\n'
        f"--{B}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        f"{text}\n--{B}\nContent-Type: message/delivery-status\n\n"
        + dsn_part(r, c["status"], "", "mail.nate.com", host)
        + f"\n--{B}\nContent-Type: text/rfc822-headers\n\n"
        + original(r, c["subject"], c["msgid"]) + f"\n--{B}--\n"
    )


def gmail_old(c: dict[str, str]) -> bytes:
    r, reply, host = c["rcpt"], c["reply"], c["host"]
    return crlf(
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
        f"To: {SENDER}\nSubject: Delivery Status Notification (Failure)\nDate: {DATE}\n\n"
        "Delivery to the following recipient failed permanently:\n\n"
        f"     {r}\n\nTechnical details of permanent failure:\n"
        "Google tried to deliver your message, but it was rejected by the server for the "
        f"recipient domain {r.split('@')[1]} by {host}. [192.0.2.80].\n\n"
        f"The error that the other server returned was:\n{reply}\n\n"
        "----- Original message -----\n\n" + original(r, c["subject"], c["msgid"])
    )


def outlook_com(c: dict[str, str]) -> bytes:
    r, reply = c["rcpt"], c["reply"]
    return crlf(
        "From: postmaster@outlook.com\n"
        f"To: {SENDER}\nSubject: Undeliverable: {c['subject']}\nDate: {DATE}\n"
        "Content-Type: text/plain; charset=utf-8\n\n"
        f"Your message to {r} couldn't be delivered.\n\n"
        f"{r.split('@')[0]} wasn't found at {r.split('@')[1]}.\n\n"
        "kim          Office 365          "
        f"{r.split('@')[0]}\nAction Required                     Recipient\n\n"
        "Unknown To address\n\nHow to Fix It\nThe address may be misspelled or may not "
        "exist.\n\nMore Info for Email Admins\n"
        f"Remote Server returned '{reply}'\n\n"
        "Original Message Headers\n\n" + original(r, c["subject"], c["msgid"])
    )


def exim_two(c: dict[str, str]) -> bytes:
    r, reply, host = c["rcpt"], c["reply"], c["host"]
    r2, reply2 = c["rcpt2"], c["reply2"]
    return crlf(
        "Return-path: <>\n"
        "From: Mail Delivery System <Mailer-Daemon@mx.example.com>\n"
        f"To: {SENDER}\nSubject: Mail delivery failed: returning message to sender\n"
        f"X-Failed-Recipients: {r}, {r2}\nDate: {DATE}\n\n"
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        f"  {r}\n    host {host} [192.0.2.44]\n"
        f"    SMTP error from remote mail server after RCPT TO:<{r}>:\n    {reply}\n"
        f"  {r2}\n    host {host} [192.0.2.44]\n"
        f"    SMTP error from remote mail server after RCPT TO:<{r2}>:\n    {reply2}\n\n"
        "------ This is a copy of the message, including all the headers. ------\n\n"
        + original(r, c["subject"], c["msgid"]) + "\nHello.\n"
    )


def postfix_two(c: dict[str, str]) -> bytes:
    r, reply, host = c["rcpt"], c["reply"], c["host"]
    r2, reply2 = c["rcpt2"], c["reply2"]
    status2 = "5.2.2" if "5.2.2" in reply2 else "5.0.0"
    second = dsn_part(r2, status2, reply2, "x", host).split("\n\n", 1)[1]
    return crlf(
        "From: MAILER-DAEMON@mail.nmail-demo.kr (Mail Delivery System)\n"
        f"To: {SENDER}\nSubject: Undelivered Mail Returned to Sender\nDate: {DATE}\n"
        f'Content-Type: multipart/report; report-type=delivery-status;\n\tboundary="{B}"\n\n'
        f"--{B}\nContent-Type: text/plain; charset=us-ascii\n\n"
        "This is the mail system at host mail.nmail-demo.kr.\n\n"
        f"<{r}>: host {host}[203.0.113.25] said: {reply} (in reply to RCPT TO command)\n\n"
        f"<{r2}>: host {host}[203.0.113.25] said: {reply2} (in reply to RCPT TO command)\n\n"
        f"--{B}\nContent-Type: message/delivery-status\n\n"
        + dsn_part(r, c["status"], reply, "mail.nmail-demo.kr", host) + "\n" + second
        + f"\n--{B}\nContent-Type: text/rfc822-headers\n\n"
        + original(r, c["subject"], c["msgid"]) + f"\n--{B}--\n"
    )


FORMATS: dict[str, Callable[[dict[str, str]], bytes]] = {
    "gmail_old": gmail_old, "outlook_com": outlook_com, "exim_two": exim_two,
    "postfix_two": postfix_two,
    "postfix": postfix, "postfix_text": postfix_text, "sendmail": sendmail,
    "sendmail_text": sendmail_text, "exim": exim, "qmail": qmail, "yahoo": yahoo,
    "exchange": exchange, "exchange_text": exchange_text, "gmail": gmail, "xmail": xmail,
    "nmail": nmail, "naver": naver, "daum": daum, "nate": nate,
}

# (category, format, recipient, status for DSN parts, reply, remote host, Korean reason)
CASES: list[tuple[str, str, str, str, str, str, str]] = [
    # Temporary failures: the seed's five, and the usual ones.
    ("temporary", "xmail", "lee@slow.example.net", "4.0.0", "417 Temporary delivery error",
     "mx.slow.example.net", ""),
    ("temporary", "nmail", "park@gone.example.org", "4.4.7",
     "The maximum number of delivery attempts has been reached. Last error: 4.4.1 connection "
     "timed out", "mx.gone.example.org", ""),
    ("temporary", "xmail", "choi@flaky.example.com", "4.0.0", "End of socket stream data",
     "mx.flaky.example.com", ""),
    ("temporary", "xmail", "jung@typo.example.kr", "4.0.0", "Invalid server address",
     "mx.typo.example.kr", ""),
    ("temporary", "xmail", "kang@odd.example.com", "4.0.0", "Bad server response",
     "mx.odd.example.com", ""),
    ("temporary", "postfix", "han@grey.example.net", "4.7.1",
     "451 4.7.1 Greylisting in action, please come back later", "mx.grey.example.net", ""),
    ("temporary", "exim", "yoon@busy.example.org", "4.3.0",
     "451 4.3.0 Temporary local problem - please try later", "mx.busy.example.org", ""),
    # No such user.
    ("no_such_user", "sendmail", "nobody1@example.org", "5.1.1", "550 User unknown",
     "mx.example.org", ""),
    ("no_such_user", "xmail", "nobody2@nmail-peer.kr", "5.0.0",
     "550 Mailbox unavailable <nobody2@nmail-peer.kr>", "mail.nmail-peer.kr", ""),
    ("no_such_user", "postfix", "nobody3@example.net", "5.1.1", "550 5.1.1 No such user",
     "mx.example.net", ""),
    ("no_such_user", "qmail", "userid@yahoo.co.kr", "5.0.0",
     "554 delivery error: dd This user doesn't have a yahoo.co.kr account (userid@yahoo.co.kr) "
     "[-5] - mta114.mail.krs.yahoo.com", "mta114.mail.krs.yahoo.com", ""),
    ("no_such_user", "gmail", "nobody5@example.com", "5.1.1",
     "550 5.1.1 The email account that you tried to reach does not exist. Please try "
     "double-checking the recipient's email address for typos.", "mx.example.com", ""),
    ("no_such_user", "exchange_text", "nobody6@corp.example", "5.1.1",
     "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found", "", ""),
    ("no_such_user", "naver", "nobody7@naver.com", "5.1.1",
     "550 5.1.1 Recipient address rejected", "mx1.naver.com",
     "받는 사람의 메일 주소가 존재하지 않습니다."),
    ("no_such_user", "daum", "nobody8@hanmail.net", "5.0.0",
     "", "mx.hanmail.net", "받는 사람의 아이디가 존재하지 않습니다."),
    # Disabled or suspended.
    ("disabled", "xmail", "sleep1@nmail-peer.kr", "5.0.0",
     "550 Account disabled <sleep1@nmail-peer.kr>", "mail.nmail-peer.kr", ""),
    ("disabled", "postfix", "sleep2@example.co.kr", "5.1.1", "550 5.1.1 Inactive mbox",
     "mx.example.co.kr", ""),
    ("disabled", "exim", "sleep3@example.com", "5.1.1", "550 5.1.1 Suspended user",
     "mx.example.com", ""),
    ("disabled", "qmail", "userid@yahoo.co.kr", "5.0.0",
     "554 delivery error: dd Sorry your message to userid@yahoo.co.kr cannot be delivered. "
     "This account has been disabled or discontinued [#102]. - mta115.mail.krs.yahoo.com",
     "mta115.mail.krs.yahoo.com", ""),
    ("disabled", "nate", "sleep5@nate.com", "5.2.1", "", "mx.nate.com",
     "받는 사람의 계정이 휴면 상태입니다."),
    # Mailbox full.
    ("mailbox_full", "xmail", "full1@nmail-peer.kr", "5.2.2",
     "552 Requested mail action aborted: exceeded storage allocation - <full1@nmail-peer.kr>",
     "mail.nmail-peer.kr", ""),
    ("mailbox_full", "exchange", "full2@corp.example", "5.2.2",
     "554 5.2.2 mailbox full; The recipient's mailbox is full", "mx.corp.example", ""),
    ("mailbox_full", "gmail", "full3@example.com", "4.2.2",
     "452 4.2.2 The email account that you tried to reach is over quota.", "mx.example.com", ""),
    ("mailbox_full", "daum", "full4@hanmail.net", "5.0.0", "", "mx.hanmail.net",
     "받는 사람의 메일함 용량이 초과되었습니다."),
    # Refused by the recipient's reject list.
    ("reject_list", "xmail", "picky1@nmail-peer.kr", "5.0.0",
     "550 You are registered as spammer (by user's reject list)", "mail.nmail-peer.kr", ""),
    ("reject_list", "sendmail", "userid@example.co.kr", "5.0.0",
     "554 5.0.0 Service unavailable (userid: mail is denied, by spam filter)",
     "mx.example.co.kr", ""),
    ("reject_list", "naver", "picky3@naver.com", "5.7.1",
     "550 5.7.1 Sender address is blocked by the recipient", "mx2.naver.com",
     "받는 사람이 보낸 사람의 주소를 수신 거부했습니다."),
    # Relay denied / no permission.
    ("relay_denied", "xmail", "far1@elsewhere.example", "5.7.1", "550 Relay denied",
     "mail.nmail-peer.kr", ""),
    ("relay_denied", "qmail", "far2@elsewhere.example", "5.7.1",
     "554 Relay operation rejected", "mx.elsewhere.example", ""),
    ("relay_denied", "exim", "userid@domain.com", "5.7.1",
     "550 5.7.1 Unable to relay for userid@domain.com", "mx.domain.com", ""),
    ("relay_denied", "postfix", "far4@elsewhere.example", "5.7.1",
     "554 5.7.1 <far4@elsewhere.example>: Relay access denied", "mx.elsewhere.example", ""),
    # IP blocked for bulk sending.
    ("ip_blocked", "sendmail", "userid@hanmail.net", "5.7.1",
     "550 5.7.1 <userid@hanmail.net>... Error.your access was denied.? Since you sent too many "
     "e-mails,you are not allowed to send more e-mails within 24 hours.After 24 hours,you can "
     "send e-mails as usual.If you did not send any e-mails,which is considered as a spam,"
     "you'd better register", "mx1.hanmail.net", ""),
    ("ip_blocked", "nmail", "bulk2@naver.com", "4.4.1",
     "421 4.3.2 Your IP(111.112.113.114) is filtered and this connection will be closed. You "
     "must register your IP to http://realip.naver.com", "mx1.naver.com", ""),
    ("ip_blocked", "postfix", "bulk3@naver.com", "4.3.1", "421 4.3.1 You send too many messages.",
     "mx2.naver.com", ""),
    ("ip_blocked", "exim", "bulk4@paran.com", "5.1.0",
     "5.1.0 - Unknown address error 550-'Transaction failed. (SPAM_SUSPECT:IP_CONTROL) "
     "(http://cleanip.paran.com)'", "mx.paran.com", ""),
    ("ip_blocked", "xmail", "bulk5@yahoo.co.kr", "4.0.0",
     "451 mta113.mail.krs.yahoo.com Resources temporarily unavailable. Please try again later "
     "[#4.16.5].", "mta113.mail.krs.yahoo.com", ""),
    ("ip_blocked", "yahoo", "bulk6@yahoo.com", "4.7.0",
     "421 4.7.0 [TSS04] Messages from 111.112.113.114 temporarily deferred due to unexpected "
     "volume or user complaints", "mta6.am0.yahoodns.net", ""),
    # RBL / DNSBL.
    ("rbl", "xmail", "rbl1@naver.com", "4.0.0",
     "421 4.3.2 Your ip is filtered by RBL (http://realip.naver.com/rbl/rblinfo.html)"
     "(IP:111.112.113.114)(Caues:http://dsbl.org/listing?111.112.113.114)", "mx1.naver.com", ""),
    ("rbl", "sendmail", "rbl2@example.com", "5.3.0",
     "553 5.3.0 ... Rejected - see http://www.mail-abuse.org/rbl/", "mx.example.com", ""),
    ("rbl", "qmail", "rbl3@example.net", "5.0.0",
     "553-mail rejected because your IP is in DUL. See http://www.mail-abuse.com/enduserinfo.html",
     "mx.example.net", ""),
    ("rbl", "postfix", "rbl4@example.org", "5.7.1",
     "554 5.7.1 Service unavailable; Client host [111.112.113.114] blocked using zen.spamhaus.org",
     "mx.example.org", ""),
    # Spam.
    ("spam", "qmail", "spam1@example.com", "5.0.0", "553 Blocked for spam", "mx.example.com", ""),
    ("spam", "exim", "spam2@example.co.kr", "5.5.0", "550 5.5.0 Your message was rejected.",
     "mx.example.co.kr", ""),
    ("spam", "gmail", "spam3@example.com", "5.7.1",
     "550 5.7.1 Message rejected as spam by Content Filtering.", "mx.example.com", ""),
    ("spam", "nate", "spam4@nate.com", "5.7.1", "", "mx.nate.com",
     "받는 서버가 이 메일을 스팸으로 판단했습니다."),
    # Virus.
    ("virus", "xmail", "av1@nmail-peer.kr", "5.0.0", "550 Virus in your mail!!!",
     "mail.nmail-peer.kr", ""),
    ("virus", "postfix", "av2@example.com", "5.7.0", "554 5.7.0 Virus found: Win.Trojan.Agent",
     "mx.example.com", ""),
    ("virus", "exchange", "av3@corp.example", "5.7.1",
     "550 5.7.1 Message contains a virus (Eicar-Test-Signature)", "mx.corp.example", ""),
    # Illegal attachment.
    ("attachment", "gmail", "att1@gmail.com", "5.7.0",
     "552 5.7.0 Illegal Attachment 36si248323nzk+I9:I15", "gmail-smtp-in.l.google.com", ""),
    ("attachment", "postfix", "att2@gmail.com", "5.7.0",
     "552-5.7.0 This message was blocked because its content presents a potential security "
     "issue.", "gmail-smtp-in.l.google.com", ""),
    ("attachment", "exim", "att3@example.com", "5.6.1",
     "554 5.6.1 Attachment type not allowed (.exe)", "mx.example.com", ""),
    # Mail loop.
    ("loop", "qmail", "loop1@example.net", "5.4.6", "Mail loop detected", "mx.example.net", ""),
    ("loop", "xmail", "loop2@nmail-peer.kr", "5.4.6", "554 Message blocked by mail loop check",
     "mail.nmail-peer.kr", ""),
    ("loop", "exchange", "loop3@corp.example", "5.4.6",
     "554 5.4.6 Too many hops; possible mail loop", "mx.corp.example", ""),
    ("loop", "sendmail", "loop4@example.org", "5.4.6",
     "554 5.4.0 Hop count exceeded - possible mail loop", "mx.example.org", ""),
    # Too big.
    ("too_big", "qmail", "big1@example.net", "5.3.4", "Message size excedes the server limit",
     "mx.example.net", ""),
    ("too_big", "xmail", "big2@nmail-peer.kr", "5.3.4",
     "552 Message exceeds fixed maximum message size", "mail.nmail-peer.kr", ""),
    ("too_big", "gmail", "big3@gmail.com", "5.2.3",
     "552 5.2.3 Your message exceeded Google's message size limits.",
     "gmail-smtp-in.l.google.com", ""),
    ("too_big", "exchange", "big4@corp.example", "5.3.4",
     "552 5.3.4 Message size exceeds fixed limit", "mx.corp.example", ""),
    # Unknown: replies that say nothing we can classify.
    ("unknown", "postfix", "odd1@example.net", "5.0.0", "554 5.0.0 Go away", "mx.example.net", ""),
    ("unknown", "exim", "odd2@example.org", "5.7.1", "550 5.7.1 Policy 17 applies",
     "mx.example.org", ""),
    ("unknown", "qmail", "odd3@example.com", "5.0.0", "554 Transaction rejected (code 42)",
     "mx.example.com", ""),
    # More formats, and bounces naming two recipients with different causes.
    ("no_such_user", "gmail_old", "nobody9@example.com", "5.1.1",
     "550-5.1.1 The email account that you tried to reach does not exist.",
     "mx.example.com", ""),
    ("no_such_user", "outlook_com", "nobody10@contoso.example", "5.1.10",
     "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
     "", ""),
    ("spam", "outlook_com", "spam5@contoso.example", "5.7.1",
     "550 5.7.1 Service unavailable, message rejected as spam [ABC123]", "", ""),
    ("rbl", "gmail_old", "rbl5@example.net", "5.7.1",
     "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using b.barracudacentral.org",
     "mx.example.net", ""),
    ("no_such_user", "exim_two", "two1@example.com", "5.1.1", "550 5.1.1 User unknown",
     "mx.example.com", "", ),
    ("no_such_user", "postfix_two", "two3@example.net", "5.1.1", "550 5.1.1 No such user",
     "mx.example.net", ""),
]

# The second recipient of the *_two formats: (address, reply, its category).
SECOND = {
    "exim_two": ("two2@example.com", "452 4.2.2 Mailbox full", "mailbox_full"),
    "postfix_two": ("two4@example.net", "552 5.2.2 Over quota", "mailbox_full"),
}


def main() -> None:
    expected: dict[str, dict[str, object]] = {}
    for category in {case[0] for case in CASES}:
        shutil.rmtree(HERE / category, ignore_errors=True)
    for number, (category, fmt, rcpt, status, reply, host, reason) in enumerate(CASES, 1):
        case = {
            "rcpt": rcpt, "status": status, "reply": reply, "host": host,
            "subject": f"=?UTF-8?B?{base64.b64encode(f'견적서 {number}호'.encode()).decode()}?=",
            "msgid": f"case{number}.{fmt}@nmail-demo.kr",
        }
        if reason:
            case["reason_ko"] = reason
        rcpts, categories = [rcpt], [category]
        if fmt in SECOND:
            case["rcpt2"], case["reply2"], second_category = SECOND[fmt]
            rcpts.append(case["rcpt2"])
            categories.append(second_category)
        name = f"{category}/{number:02d}_{fmt}.eml"
        (HERE / category).mkdir(exist_ok=True)
        (HERE / name).write_bytes(FORMATS[fmt](case))
        carries_original = fmt != "naver"  # Naver's notice quotes no header of it
        expected[name] = {
            "category": category, "recipients": rcpts, "categories": categories,
            "subject": f"견적서 {number}호" if carries_original else "",
            "message_id": case["msgid"] if carries_original else "",
        }
    (HERE / "expected.json").write_text(
        json.dumps(expected, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    )


if __name__ == "__main__":
    main()
