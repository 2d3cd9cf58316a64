"""The templates' kept gettext gives what Jinja's own newstyle gettext gives."""

from __future__ import annotations

import pytest
from jinja2 import DictLoader, Environment

from nmail.web import i18n
from nmail.web.templating import Templates, kept_gettext

SOURCE = (
    '{{ _("Skip to content") }}|{{ _("Inbox") }}|{{ _("Back to %(folder)s", folder=name) }}'
    '|{{ _("%(percent)d%% of the quota", percent=7) }}|{{ _("100%% <b>") }}'
    '|{{ gettext("Inbox") }}|{{ _(name) }}'
)


def environments(autoescape: bool) -> tuple[Environment, Environment]:
    pair = []
    for kept in (False, True):
        env = Environment(loader=DictLoader({"t.html": SOURCE}), autoescape=autoescape,
                          extensions=["jinja2.ext.i18n"])
        env.install_gettext_callables(  # type: ignore[attr-defined]
            i18n.gettext, i18n.ngettext, newstyle=True)
        if kept:
            env.globals["gettext"] = env.globals["_"] = kept_gettext(limit=3)
        pair.append(env)
    return pair[0], pair[1]


@pytest.mark.parametrize("autoescape", [True, False])
@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_kept_gettext_renders_what_jinjas_gettext_renders(autoescape: bool, lang: str) -> None:
    stock, kept = environments(autoescape)
    marker = i18n.set_language(lang)
    try:
        for name in ("<Sent & co>", "거래처", "x" * 10):  # past the limit of 3 kept texts
            want = stock.get_template("t.html").render(name=name)
            for _ in range(2):  # once to keep, once from what was kept
                assert kept.get_template("t.html").render(name=name) == want
    finally:
        i18n._current.reset(marker)


def test_the_same_text_follows_the_request_language() -> None:
    env = Templates().env
    template = env.from_string('{{ _("Inbox") }}')
    seen = []
    for lang in ("ko", "en", "ko"):
        marker = i18n.set_language(lang)
        try:
            seen.append(template.render())
        finally:
            i18n._current.reset(marker)
    assert seen[0] == seen[2] != seen[1]
    assert seen[1] == "Inbox"
