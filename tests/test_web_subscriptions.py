"""Folder subscriptions in the webmail: the manage page sets them, the tree follows them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from server_rig import RunningServer
from web_rig import Browser, web_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with web_server(tmp_path) as srv:
        srv.add_user("bob@example.com")
        srv.add_user("carol@example.com")
        yield srv


@pytest.fixture
def bob(server: RunningServer) -> Iterator[Browser]:
    b = Browser(server)
    b.login("bob")
    b.get("/folders")
    for name in ("Projects", "Old"):
        assert b.post("/folders/create", {"name": name}).status_code == 303
    yield b
    b.close()


def ids(server: RunningServer, address: str) -> dict[str, int]:
    account = server.directory.get_account(address)
    assert account is not None
    return {f.name: f.id for f in server.runtime.store.list_folders(account.id)}


def subscribed(server: RunningServer, address: str) -> dict[str, bool]:
    account = server.directory.get_account(address)
    assert account is not None
    return {f.name: f.subscribed for f in server.runtime.store.list_folders(account.id)}


def tree_and_more(page: str) -> tuple[list[str], list[str]]:
    """Folder names in the tree, and those folded under "All folders"."""
    names = r'data-folder-name="([^"]+)"'
    tree = page.split("data-folder-tree>", 1)[1].split("</ul>", 1)[0]
    more = page.split('class="more-folders"', 1)[1].split("</details>", 1)[0] if (
        'class="more-folders"' in page) else ""
    return re.findall(names, tree), re.findall(names, more)


def test_unsubscribe_and_the_tree_follows(server: RunningServer, bob: Browser) -> None:
    folders = ids(server, "bob@example.com")
    everything = [str(i) for i in folders.values()]
    shown = [str(i) for name, i in folders.items() if name not in ("Old", "Spam")]
    answer = bob.post("/folders/subscriptions", {"listed": everything, "shown": shown})
    assert answer.status_code == 303
    state = subscribed(server, "bob@example.com")  # the mailbox model's own flag
    assert not state["Old"] and not state["Spam"] and state["Projects"] and state["INBOX"]
    inbox = bob.get(f"/mail/{folders['INBOX']}").text
    tree, more = tree_and_more(inbox)
    assert "Old" not in tree and "Spam" not in tree and "Projects" in tree
    assert sorted(more) == ["Old", "Spam"]
    assert "All folders (2 more)" in inbox
    # The folder open is in the tree even when not subscribed.
    tree, more = tree_and_more(bob.get(f"/mail/{folders['Old']}").text)
    assert "Old" in tree and more == ["Spam"]
    # The manage page lists every folder with its box.
    manage = bob.get("/folders").text
    assert f'name="shown" value="{folders["Old"]}">' in manage
    assert f'name="shown" value="{folders["Projects"]}" checked>' in manage
    # Subscribe again.
    assert bob.post("/folders/subscriptions", {"listed": everything,
                                               "shown": everything}).status_code == 303
    assert all(subscribed(server, "bob@example.com").values())
    assert 'class="more-folders"' not in bob.get(f"/mail/{folders['INBOX']}").text


def test_inbox_stays_and_unlisted_folders_keep_their_state(server: RunningServer,
                                                           bob: Browser) -> None:
    folders = ids(server, "bob@example.com")
    # Only INBOX and Old were on the form; nothing ticked.
    answer = bob.post("/folders/subscriptions",
                      {"listed": [str(folders["INBOX"]), str(folders["Old"])]})
    assert answer.status_code == 303
    state = subscribed(server, "bob@example.com")
    assert state["INBOX"] and not state["Old"] and state["Projects"] and state["Sent"]


def test_bad_subscription_posts(server: RunningServer, bob: Browser) -> None:
    folders = ids(server, "bob@example.com")
    carols = ids(server, "carol@example.com")
    before = subscribed(server, "bob@example.com")
    for fields in ({"listed": [str(folders["Old"]), str(carols["INBOX"])]},
                   {"listed": [str(folders["Old"])], "shown": [str(carols["Sent"])]},
                   {"listed": ["999999"]}):
        assert bob.post("/folders/subscriptions", fields).status_code == 404
    assert subscribed(server, "bob@example.com") == before
    assert subscribed(server, "carol@example.com")["INBOX"]
    # Garbage is ignored, not an error page; no token is 403.
    assert bob.post("/folders/subscriptions", {"listed": ["abc", "-1", "1" * 30],
                                               "shown": ["x"]}).status_code == 303
    assert bob.client.post("/folders/subscriptions",
                           data={"listed": [str(folders["Old"])]}).status_code == 403
    assert subscribed(server, "bob@example.com") == before


def test_subfolders_are_indented_without_inline_styles(server: RunningServer,
                                                       bob: Browser) -> None:
    """The CSP (style-src 'self') drops style="" attributes, so `--depth` set there never
    indented a subfolder: the depth is a data attribute the stylesheet reads."""
    account = server.directory.get_account("bob@example.com")
    assert account is not None
    server.runtime.store.create_folder(account.id, "Projects/삼성전자")
    folders = ids(server, "bob@example.com")
    for page in (bob.get(f"/mail/{folders['INBOX']}").text, bob.get("/folders").text):
        assert ' style="' not in page
    inbox = bob.get(f"/mail/{folders['INBOX']}").text
    link = re.search(r'<a [^>]*data-folder-name="Projects/삼성전자"[^>]*>', inbox)
    assert link is not None and 'data-depth="1"' in link.group(0)
    assert 'data-depth="1"' in bob.get("/folders").text
    css = (Path(__file__).parent.parent / "src/nmail/web/static/nmail.css").read_text()
    assert '[data-depth="1"] { --depth: 1; }' in css
