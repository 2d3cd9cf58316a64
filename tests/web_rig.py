"""The webmail on a real nmail (Runtime on loopback), and an httpx browser for it."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx

from server_rig import PASSWORD, RunningServer

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def web_server(tmp_path: Path, database_url: str | None = None) -> RunningServer:
    from server_rig import make_data_dir

    return RunningServer(make_data_dir(tmp_path, database_url), listeners=("smtp", "http"))


def set_web(data: Path, lines: str) -> None:
    """Add settings to nmail.toml's [web] section (which `nmail init` writes)."""
    config = data / "nmail.toml"
    text = config.read_text()
    if "\n[web]\n" in text:
        text = text.replace("\n[web]\n", "\n[web]\n" + lines.strip() + "\n", 1)
    else:
        text += "\n[web]\n" + lines.strip() + "\n"
    config.write_text(text)


class Browser:
    """An httpx client that sends the Host a user typed, keeps cookies, reads CSRF tokens."""

    def __init__(self, server: RunningServer, host: str = "mail.example.com",
                 language: str = "en") -> None:
        self.base = f"http://127.0.0.1:{server.port('http')}"
        self.client = httpx.Client(base_url=self.base, headers={
            "Host": host, "Accept": "text/html", "Accept-Language": language,
        }, follow_redirects=False, timeout=20)
        self.csrf = ""

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        response = self.client.get(path, **kwargs)  # type: ignore[arg-type]
        found = CSRF_FIELD.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict[str, object] | None = None,
             csrf: bool = True, **kwargs: object) -> httpx.Response:
        fields = dict(data or {})
        if csrf:
            fields["csrf_token"] = self.csrf
        return self.client.post(path, data=fields, **kwargs)  # type: ignore[arg-type]

    def login(self, userid: str, password: str = PASSWORD) -> httpx.Response:
        """Log in through the form; on success, load a page so `csrf` is the new session's."""
        self.get("/login")
        answer = self.post("/login", {"userid": userid, "password": password})
        if answer.status_code == 303:
            home = self.get("/")
            if home.status_code == 303:
                self.get(home.headers["location"])
        return answer

    def shown(self, screen: str, view: str = "body") -> httpx.Response:
        """`view` ("body" or "print") of the read screen at `screen` after a click on "Show
        images" there: the screen asked from our own page, then the URL it gives, which
        carries its token (web/image_grant.py)."""
        page = self.get(screen + "?images=1", headers={"Sec-Fetch-Site": "same-origin"})
        pattern = r'class="message-frame" src="([^"]+)"' if view == "body" else \
            r'<a href="([^"]+/print\?show=[^"]+)"'
        found = re.search(pattern, page.text)
        assert found, (screen, view, page.status_code)
        return self.get(found.group(1).replace("&amp;", "&"))

    def session_cookie(self) -> str:
        return self.client.cookies.get("nmail_session") or ""

    def close(self) -> None:
        self.client.close()


def deliver(server: RunningServer, to: str, subject: str, body: str = "hello",
            sender: str = "alice@remote.example", name: str = "Alice",
            date: str | None = None) -> None:
    message = EmailMessage()
    if date is not None:
        message["Date"] = date
    message["From"] = f"{name} <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
        smtp.send_message(message, from_addr=sender, to_addrs=[to])


def browsers(server: RunningServer) -> Iterator[Browser]:
    made: list[Browser] = []
    try:
        while True:
            b = Browser(server)
            made.append(b)
            yield b
    finally:
        for b in made:
            b.close()
