"""Text from outside reaches the admin's terminal escaped, never raw.

Much of what the CLI prints came from strangers: an AUTH user name kept by
the login throttle (`nmail lockout list`), envelope addresses and remote
replies in `queue show`, subjects and reasons of returned mail, folder
names found on disk. A terminal obeys control sequences inside such text:
an ESC sequence can retitle the window, rewrite earlier lines or hide what
follows; a C1 CSI (U+009B) does the same in one character; a bidi override
(U+202E) makes `moc.live@` read as `@evil.com`. rich removes a few controls
(BEL, BS, CR) but lets ESC, C1 and bidi through.

So every byte of output goes through `escape_controls` in one place:
`SafeConsole`, the rich Console of every command (CliContext), escapes each
text segment before rich adds its own styling codes; `print_error` and JSON
output use the same function. Controls are shown as `\\x1b` or `\\u202e`,
so the admin still sees that they were there.

rich's markup is a second way in: a folder name like
`[link=mailto:x@evil.example]Bills` in a plain string would become an OSC 8
hyperlink (an escape rich writes itself, after our escaping), and `[/x]`
raises MarkupError in the middle of a report. So SafeConsole reads no
markup unless a caller asks for it; styling goes through Text and styles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.segment import Segment

# C0 controls but newline and tab, DEL, C1 controls, and the bidi controls
# (ALM, LRM, RLM, LRE/RLE/PDF/LRO/RLO, LRI/RLI/FSI/PDI), plus the line and
# paragraph separators some terminals treat as line ends.
_CONTROLS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
# In one-line values (a table cell, a name inside a sentence) newline and tab
# are controls too: a forged line break would fake a row of its own.
_LINE_CONTROLS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`text` with every terminal control but newline and tab written out as `\\x..`/`\\u....`."""
    return _CONTROLS.sub(_shown, text)


def one_line(text: str) -> str:
    """`text` for a single line: newline and tab written out too."""
    return _LINE_CONTROLS.sub(_shown, text)


def escape_json_text(dumped: str) -> str:
    """JSON from json.dumps(..., ensure_ascii=False) with C1 and bidi controls as
    \\u escapes (json escapes C0 itself, not those); the JSON means the same."""
    return _CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


class SafeConsole(Console):
    """A rich Console that escapes controls in everything it prints, markup off."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        super().__init__(*args, **kwargs)

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        # Control segments are rich's own cursor moves; text segments may be anyone's.
        safe = (
            segment if segment.control else Segment(
                escape_controls(segment.text), segment.style, segment.control
            )
            for segment in buffer
        )
        return super()._render_buffer(safe)
