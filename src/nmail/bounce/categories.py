"""The return-mail categories' ids, and the record the catalogue fills for each.

Apart from catalogue.py (the Korean and English words for each category,
most of its lines) because the code that classifies and counts refusals
(rules.py, analysis.py, outbound_log.py) names categories by id; the words
are for the webmail, the help page and `nmail bounce report`.
"""

from __future__ import annotations

from dataclasses import dataclass

TEMPORARY = "temporary"
NO_SUCH_USER = "no_such_user"
DISABLED = "disabled"
MAILBOX_FULL = "mailbox_full"
REJECT_LIST = "reject_list"
RELAY_DENIED = "relay_denied"
IP_BLOCKED = "ip_blocked"
RBL = "rbl"
SPAM = "spam"
VIRUS = "virus"
ATTACHMENT = "attachment"
LOOP = "loop"
TOO_BIG = "too_big"
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Category:
    """One cause of returned mail, as the webmail and the report show it."""

    id: str
    title_ko: str
    title_en: str
    explanation_ko: str
    explanation_en: str
    remedy_ko: str
    remedy_en: str
    examples: tuple[str, ...]  # remote replies that fall in this category

    def title(self, lang: str) -> str:
        """The title in `lang` ("ko" or anything else for English)."""
        return self.title_ko if lang == "ko" else self.title_en

    def explanation(self, lang: str) -> str:
        return self.explanation_ko if lang == "ko" else self.explanation_en

    def remedy(self, lang: str) -> str:
        return self.remedy_ko if lang == "ko" else self.remedy_en
