"""Korean and English from Babel catalogs, loaded from the .po files at start.

No build step: `locale/<lang>/LC_MESSAGES/messages.po` is compiled in memory
when the app starts (a few milliseconds), so the repository holds only the
.po files and nothing can drift out of date. The language of a request is
the user's setting, then the browser's Accept-Language, then Korean. The
choice lives in a context variable set once per request, so templates and
Python code (`gettext`) agree without passing a translator around.
"""

from __future__ import annotations

import contextvars
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = ("ko", "en")
DEFAULT_LANGUAGE = "ko"
LOCALE_DIR = Path(__file__).parent / "locale"

_catalogs: dict[str, Translations] = {}
_current: contextvars.ContextVar[str] = contextvars.ContextVar("nmail_language",
                                                               default=DEFAULT_LANGUAGE)


def load_catalogs(locale_dir: Path = LOCALE_DIR) -> dict[str, Translations]:
    """Compile every language's .po in memory; idempotent."""
    if not _catalogs:
        for lang in LANGUAGES:
            path = locale_dir / lang / "LC_MESSAGES" / "messages.po"
            with path.open("rb") as f:
                catalog = read_po(f, locale=lang)
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            _catalogs[lang] = Translations(fp=buffer)
    return _catalogs


def negotiate(preferred: str, accept_language: str | None) -> str:
    """The language to answer in: the user's setting, then the browser's list."""
    if preferred in LANGUAGES:
        return preferred
    choices: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            choices.append((-quality, index, primary))
    return min(choices)[2] if choices else DEFAULT_LANGUAGE


def set_language(lang: str) -> contextvars.Token[str]:
    return _current.set(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)


def current_language() -> str:
    return _current.get()


def gettext(message: str) -> str:
    """The message in this request's language."""
    return load_catalogs()[_current.get()].ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return load_catalogs()[_current.get()].ungettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Marks a message for extraction; translated later, where it is shown."""
    return message


def N_plural(singular: str, plural: str) -> tuple[str, str]:
    """Marks a singular/plural pair for extraction (shown through ngettext)."""
    return singular, plural
