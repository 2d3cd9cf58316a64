"""Address-book groups in To/Cc/Bcc: a group's name typed as a recipient means its members.

Expansion happens on the server when the form is sent or saved, so it works
without JavaScript (completion only helps to type the name). An item of a
recipient field that has no `@` and no `<...>` is taken for a group name
(compared without case); it is replaced by the group's members as
`Name <address>` text, and the result goes through the same checks as
anything typed (mime.composing.parse_recipients). A name that is no group
with members (never one, deleted, or emptied: groups are labels on
contacts, so a group without members does not exist) is a GroupError
naming it, and nothing is sent. Members already in the same field are not
repeated. Pure: the routes read the groups (ContactsStore.group_members).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nmail.web.compose_form import shown

Member = tuple[str, str]  # (name, address)


class GroupError(ValueError):
    """A recipient field names a group the address book does not have (str: the name)."""

    def __init__(self, field: str, name: str) -> None:
        super().__init__(name)
        self.field = field
        self.name = name


def split_items(text: str) -> list[str]:
    """The field's items, split at , ; and line breaks outside quotes and <...>."""
    items: list[str] = []
    current: list[str] = []
    quoted = angled = escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"' and not angled:
            quoted = not quoted
        elif ch == "<" and not quoted:
            angled = True
        elif ch == ">" and not quoted:
            angled = False
        elif ch in ",;\r\n" and not quoted and not angled:
            items.append("".join(current))
            current = []
            continue
        current.append(ch)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def is_group_name(item: str) -> bool:
    return "@" not in item and "<" not in item and '"' not in item


def names_groups(text: str) -> bool:
    """Whether the field has an item that can only be a group's name."""
    return any(is_group_name(item) for item in split_items(text))


def expand(text: str, field: str, groups: Mapping[str, Sequence[Member]]) -> str:
    """`text` with every group name replaced by the group's members.

    `groups` maps a case-folded group name to its members. GroupError for a name
    that is not there (or has none).
    """
    out: list[str] = []
    for item in split_items(text):
        if not is_group_name(item):
            out.append(item)
            continue
        members = groups.get(" ".join(item.split()).casefold())
        if not members:
            raise GroupError(field, item)
        out.extend(shown([member]) for member in members)
    return ", ".join(_unrepeated(out))


def _unrepeated(items: list[str]) -> list[str]:
    """Each address once (the first spelling of it kept)."""
    kept: list[str] = []
    addresses: set[str] = set()
    for item in items:
        address = item.rsplit("<", 1)[-1].rstrip(">").strip().lower()
        if address in addresses:
            continue
        addresses.add(address)
        kept.append(item)
    return kept
