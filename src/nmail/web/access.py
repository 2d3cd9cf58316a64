"""Which domain a browser is logging into, from the host name it opened.

As in the seed, `mail.example.com` and `webmail.example.com` log users of
`example.com` in with their bare user id; the admin can map other names in
`[web] hosts`. A full address always works, but a bare id never crosses to a
domain other than the host's (so `mail.a.com` cannot reach `bob@b.com` by
typing `bob`).
"""

from __future__ import annotations

from collections.abc import Callable

from nmail.web.web_settings import WebSettings

_PREFIXES = ("mail.", "webmail.")


def host_name(host_header: str | None) -> str:
    """The Host header without port, lower case ("" when missing or malformed)."""
    if not host_header:
        return ""
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8080
        return host[1 : host.find("]")] if "]" in host else ""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if not name or any(c in name for c in "/\\@ \t"):
        return ""
    return name.rstrip(".")


def domain_for_host(
    host_header: str | None, settings: WebSettings, is_hosted: Callable[[str], bool]
) -> str | None:
    """The hosted domain this host name stands for, or None."""
    name = host_name(host_header)
    if not name:
        return None
    mapped = settings.host_domains.get(name)
    if mapped is not None:
        return mapped if is_hosted(mapped) else None
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            candidate = name[len(prefix):]
            if candidate and is_hosted(candidate):
                return candidate
    return name if is_hosted(name) else None
