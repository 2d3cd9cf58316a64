"""Issue 11: attachments uploaded for messages never sent are swept on a schedule and bounded.

The sweep runs for every user (not only when the same user uploads again),
from the web app's lifespan and then on an interval; one user's staged
uploads are bounded in files and bytes, refused with a reason over HTTP.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nmail.web import upload_sweeper
from nmail.web.uploads import MAX_AGE, STAGED_MESSAGES, UploadQuotaFull, Uploads
from server_rig import RunningServer, make_data_dir
from support import wait_until
from web_rig import Browser

LIMIT = 1000


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def age(uploads_root: Path, seconds: float) -> None:
    """Make every staged file look `seconds` old."""
    when = time.time() - seconds
    for path in uploads_root.rglob("*"):
        if path.is_file():
            os.utime(path, (when, when))


def test_sweep_all_removes_only_old_uploads_of_every_user(tmp_path: Path) -> None:
    uploads = Uploads(tmp_path / "up")
    old = [uploads.save(account, "a.txt", "text/plain", [b"abc"], LIMIT) for account in (1, 2)]
    age(tmp_path / "up", MAX_AGE + 60)
    fresh = uploads.save(3, "b.txt", "text/plain", [b"new"], LIMIT)
    (tmp_path / "up" / "not-an-account").mkdir()
    (tmp_path / "up" / "not-an-account" / "x.bin").write_bytes(b"left alone")
    assert uploads.sweep_all() == 4  # .bin and .json of each old upload
    assert [uploads.get(account, u.token) for account, u in zip((1, 2), old, strict=True)] == [
        None, None]
    assert uploads.get(3, fresh.token) == fresh
    assert (tmp_path / "up" / "not-an-account" / "x.bin").exists()
    assert uploads.sweep_all() == 0
    assert Uploads(tmp_path / "missing").sweep_all() == 0


def test_staged_uploads_are_bounded_in_files(tmp_path: Path) -> None:
    uploads = Uploads(tmp_path / "up", max_files=3)
    saved = [uploads.save(7, f"{n}.txt", "text/plain", [b"x"], LIMIT) for n in range(3)]
    with pytest.raises(UploadQuotaFull) as full:
        uploads.save(7, "4.txt", "text/plain", [b"x"], LIMIT)
    assert full.value.reason == "files"
    assert uploads.staged(7) == (3, 3)
    uploads.save(8, "other.txt", "text/plain", [b"x"], LIMIT)  # another user is not counted
    uploads.remove(7, saved[0].token)
    uploads.save(7, "4.txt", "text/plain", [b"x"], LIMIT)
    assert uploads.staged(7) == (3, 3)


def test_staged_uploads_are_bounded_in_bytes_and_nothing_partial_is_kept(tmp_path: Path) -> None:
    uploads = Uploads(tmp_path / "up", max_bytes=100)
    uploads.save(7, "a.bin", "application/octet-stream", [b"x" * 60], LIMIT)
    with pytest.raises(UploadQuotaFull) as full:
        uploads.save(7, "b.bin", "application/octet-stream", [b"y" * 30, b"y" * 30], LIMIT)
    assert full.value.reason == "bytes"
    assert uploads.staged(7) == (1, 60)
    assert len(list((tmp_path / "up" / "7").iterdir())) == 2  # a.bin and a.json only
    uploads.save(7, "c.bin", "application/octet-stream", [b"z" * 40], LIMIT)  # exactly full
    # Without a byte bound of its own: STAGED_MESSAGES messages' worth of the limit.
    default = Uploads(tmp_path / "up2")
    for n in range(STAGED_MESSAGES):
        default.save(9, f"{n}.bin", "application/octet-stream", [b"x" * LIMIT], LIMIT)
    with pytest.raises(UploadQuotaFull):
        default.save(9, "one-more.bin", "application/octet-stream", [b"x"], LIMIT)


def test_the_sweeper_runs_again_on_its_interval(tmp_path: Path) -> None:
    uploads = Uploads(tmp_path / "up")

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    state = SimpleNamespace(webmsg=SimpleNamespace(uploads=uploads), web=SimpleNamespace(run=run))

    async def scenario() -> None:
        # The interval is waited out by this sleep, stepped by the test: each
        # call is a sweep finished, each wake the interval over.
        began: asyncio.Queue[float] = asyncio.Queue()
        wake = asyncio.Event()

        async def sleep(seconds: float) -> None:
            await began.put(seconds)
            await wake.wait()
            wake.clear()

        task = upload_sweeper.start(state, interval=1234.0, sleep=sleep)
        try:
            assert await asyncio.wait_for(began.get(), 10) == 1234.0  # swept at start
            for round_ in range(2):  # a second old upload goes too: it repeats
                upload = uploads.save(1, f"{round_}.txt", "text/plain", [b"x"], LIMIT)
                age(tmp_path / "up", MAX_AGE + 60)
                assert uploads.get(1, upload.token) is not None
                wake.set()
                assert await asyncio.wait_for(began.get(), 10) == 1234.0, "no sweep again"
                assert uploads.get(1, upload.token) is None, "the sweep left the old upload"
        finally:
            task.cancel()

    asyncio.run(scenario())


def test_the_web_app_sweeps_at_start_and_refuses_a_full_stage(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path)
    config = data / "nmail.toml"
    text = config.read_text(encoding="utf-8")
    setting = '\nmax_attachment_size = "1K"\n'
    text = text.replace("[web]\n", "[web]" + setting, 1) if "[web]\n" in text else (
        text + "\n[web]" + setting)
    config.write_text(text, encoding="utf-8")
    planted = data / "webmail-uploads" / "4242"
    planted.mkdir(parents=True)
    (planted / ("A" * 22 + ".bin")).write_bytes(b"left behind")
    age(data / "webmail-uploads", MAX_AGE + 60)
    with RunningServer(data, listeners=("smtp", "http")) as server:
        wait_until(lambda: not (planted / ("A" * 22 + ".bin")).exists(), 20,
                   "the old upload swept at start")
        server.add_user("bob@example.com")
        browser = Browser(server)
        assert browser.login("bob").status_code == 303
        found = re.search(r'data-limit="(\d+)"', browser.get("/compose").text)
        assert found is not None
        limit = int(found.group(1))
        headers = {"X-CSRF-Token": browser.csrf, "Content-Type": "text/plain",
                   "Accept": "application/json"}
        for n in range(STAGED_MESSAGES):
            ok = browser.client.post(f"/compose/upload?name={n}.txt", content=b"x" * limit,
                                     headers=headers)
            assert ok.status_code == 200, ok.text
        full = browser.client.post("/compose/upload?name=more.txt", content=b"x" * 10,
                                   headers=headers)
        assert full.status_code == 413
        assert "waiting in unsent messages" in full.json()["detail"]
        assert "removed after a day" in full.json()["detail"]
        korean = Browser(server, language="ko")
        korean.login("bob")
        korean.get("/compose")
        refused = korean.client.post("/compose/upload?name=more.txt", content=b"x", headers={
            **headers, "X-CSRF-Token": korean.csrf, "Accept-Language": "ko"})
        assert refused.status_code == 413 and "하루 뒤 지워집니다" in refused.json()["detail"]
        korean.close()
        browser.close()
