"""Issue 11: the webmail's pure parts: hosts, client addresses, languages, catalogs."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_python
from babel.messages.pofile import read_po

from nmail.config_values import ConfigError
from nmail.web import i18n
from nmail.web.access import domain_for_host, host_name
from nmail.web.client_address import forwarded_tls, real_client
from nmail.web.web_settings import WebSettings, web_settings

HOSTED = {"example.com", "other.org"}.__contains__


@pytest.mark.parametrize(("host", "domain"), [
    ("mail.example.com", "example.com"),
    ("MAIL.Example.COM:8443", "example.com"),
    ("webmail.other.org", "other.org"),
    ("example.com", "example.com"),
    ("mail.unknown.net", None),
    ("", None),
    (None, None),
    ("mail.", None),
    ("evil.com/x", None),
    ("[::1]:8080", None),
])
def test_domain_from_host(host: str | None, domain: str | None) -> None:
    assert domain_for_host(host, WebSettings(), HOSTED) == domain


def test_configured_map_wins_and_must_be_hosted() -> None:
    settings = WebSettings(host_domains={"post.corp": "other.org", "mail.example.com": "gone.net"})
    assert domain_for_host("post.corp", settings, HOSTED) == "other.org"
    assert domain_for_host("mail.example.com", settings, HOSTED) is None


def test_host_name_parsing() -> None:
    assert host_name("[2001:db8::1]:443") == "2001:db8::1"
    assert host_name("a.example.") == "a.example"


PROXIES = (ipaddress.ip_network("10.0.0.0/8"),)


def test_real_client_ignores_forwarded_for_from_strangers() -> None:
    assert real_client("203.0.113.9", ["1.2.3.4"], PROXIES) == "203.0.113.9"
    assert real_client("203.0.113.9", ["1.2.3.4"], ()) == "203.0.113.9"


def test_real_client_behind_trusted_proxies() -> None:
    assert real_client("10.0.0.1", ["198.51.100.7"], PROXIES) == "198.51.100.7"
    # A client-written hop on the left cannot pick its own address.
    assert real_client("10.0.0.1", ["6.6.6.6, 198.51.100.7"], PROXIES) == "198.51.100.7"
    assert real_client("10.0.0.1", ["198.51.100.7, 10.0.0.2"], PROXIES) == "198.51.100.7"
    assert real_client("10.0.0.1", ["garbage"], PROXIES) == "10.0.0.1"
    assert real_client("10.0.0.1", [], PROXIES) == "10.0.0.1"
    assert real_client("10.0.0.1", ["[2001:db8::5]:443"], PROXIES) == "2001:db8::5"


def test_forwarded_tls_only_from_a_trusted_proxy() -> None:
    assert forwarded_tls("10.0.0.1", "https", PROXIES)
    assert not forwarded_tls("203.0.113.9", "https", PROXIES)
    assert not forwarded_tls("10.0.0.1", "http", PROXIES)


def test_web_settings_and_bad_values() -> None:
    s = web_settings({"web": {"hosts": {"Post.Corp": "Other.org"},
                              "trusted_proxies": ["10.0.0.0/8"], "session_idle": "30m"}})
    assert s.host_domains == {"post.corp": "other.org"}
    assert s.session_idle == 1800
    for bad in ({"hosts": ["x"]}, {"trusted_proxies": ["nope"]}, {"secure_cookies": "maybe"},
                {"session_idle": "10s"}, {"session_idle": "9d"}, {"time_zone": "Mars/Base"}):
        with pytest.raises(ConfigError):
            web_settings({"web": bad})


@pytest.mark.parametrize(("pref", "header", "lang"), [
    ("en", "ko-KR,ko;q=0.9", "en"),
    ("", "ko-KR,ko;q=0.9,en;q=0.8", "ko"),
    ("", "en-US,en;q=0.9,ko;q=0.5", "en"),
    ("", "fr-FR, en;q=0.4", "en"),
    ("", "fr-FR", "ko"),
    ("", None, "ko"),
    ("", "en;q=0, ko;q=0.1", "ko"),
    ("", "en;q=abc", "ko"),
    ("xx", "en", "en"),
])
def test_language_negotiation(pref: str, header: str | None, lang: str) -> None:
    assert i18n.negotiate(pref, header) == lang


_KEYWORDS = {"_": None, "gettext": None, "N_": None, "N_plural": (1, 2), "ngettext": (1, 2)}


def _template_and_code_messages() -> set[str]:
    root = Path(i18n.__file__).parent
    found: set[str] = set()
    for path in root.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        pattern = r"""(?:\b_|gettext|N_|N_plural|ngettext)\(\s*(["'])((?:\\.|(?!\1).)+)\1"""
        for match in re.finditer(pattern, text):
            found.add(re.sub(r"\\(.)", r"\1", match.group(2)))
    for path in root.rglob("*.py"):
        # Babel's own Python extractor: it joins implicitly concatenated strings.
        with path.open("rb") as f:
            for _line, _func, messages, _comments in extract_python(f, _KEYWORDS, [], {}):
                first = messages[0] if isinstance(messages, tuple) else messages
                if first:
                    found.add(first)
    return found


def test_every_message_has_a_korean_translation() -> None:
    with (i18n.LOCALE_DIR / "ko" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale="ko")
    translated = {}
    for message in catalog:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        value = message.string[0] if isinstance(message.id, tuple) else message.string
        translated[key] = value
    missing = sorted(m for m in _template_and_code_messages() if not translated.get(m))
    assert not missing, f"run scripts/web-i18n and translate: {missing[:10]}"


def test_translations_keep_their_placeholders() -> None:
    with (i18n.LOCALE_DIR / "ko" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale="ko")
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(re.findall(r"%\(\w+\)[ds]", ids[0]))
        for s in strings:
            assert set(re.findall(r"%\(\w+\)[ds]", s)) == wanted, message.id


def test_list_dates_in_the_configured_zone() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from nmail.web.templating import short_date

    seoul = ZoneInfo("Asia/Seoul")
    now = datetime(2026, 12, 6, 15, 0, tzinfo=seoul).timestamp()
    morning = datetime(2026, 12, 6, 9, 5, tzinfo=seoul).timestamp()
    token = i18n.set_language("ko")
    try:
        assert short_date(int(morning), now, seoul) == "09:05"
        assert short_date(int(now - 86400 * 2), now, seoul) == "12월 4일"
        assert short_date(int(now - 86400 * 400), now, seoul) == "2025.11.01"
        # The same moment in New York is still the day before.
        assert short_date(int(morning), now, ZoneInfo("America/New_York")) == "12월 5일"
    finally:
        i18n._current.reset(token)
    assert web_settings({"web": {"time_zone": "UTC"}}).time_zone == "UTC"


def test_list_rows_escape_everything() -> None:
    from nmail.web.list_rows import rows_html

    row = {"uid": 7, "unseen": True, "flagged": False, "answered": False, "attachments": True,
           "from_name": '<img src=x onerror=alert(1)>', "subject": "</a><script>x()</script>",
           "preview": '"><b>', "date": "09:05", "full_date": "2026-12-06 09:05",
           "stamp": 1, "size_text": "1 KB", "thread_count": 1}
    html = str(rows_html([row], 3, "/static/icons.svg", {
        "select": "Select", "flag": "Flag", "unread": "Unread", "unknown": "?",
        "nosubject": "-", "answered": "A", "attach": "<clip>"}))
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and 'aria-label="&lt;clip&gt;"' in html
    assert 'href="/mail/3/7"' in html
    # Names and subjects are isolated: a trailing U+202E cannot reverse what follows.
    assert "<bdi>&lt;img" in html and "<bdi>&lt;/a&gt;&lt;script&gt;" in html
