"""A policy decision: accept, or an SMTP reply explaining the refusal."""

from __future__ import annotations

from dataclasses import dataclass

from nmail.quick_init import quick_init


@quick_init
@dataclass(frozen=True, slots=True)
class Decision:
    code: int  # 250 / 4xx / 5xx
    enhanced: str  # "2.1.5", "5.1.1", ...
    text: str

    @property
    def accepted(self) -> bool:
        return self.code < 400

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500


ACCEPT = Decision(250, "2.0.0", "OK")


def reject(code: int, enhanced: str, text: str) -> Decision:
    return Decision(code, enhanced, text)
