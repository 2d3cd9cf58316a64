"""Helpers the benchmark scripts share (run as `python bench/NAME.py`)."""

from __future__ import annotations

import re
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.05
) -> None:
    """Poll `predicate` until true; exit the benchmark with a message at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(poll)


def private_postfix(root: Path, prefix: str, *extra: str) -> tuple[Path, dict[str, Path], int]:
    """A directory for a private Postfix instance: (base, {etc, spool, data, *extra}, port).

    master.cf is Debian's with smtpd on 127.0.0.1:<port> and no chroot (the
    private spool has no copy of /etc); main.cf is empty, for postconf to fill.
    """
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    base.chmod(0o755)  # Postfix's daemons run as the postfix user
    dirs = {name: base / name for name in ("etc", "spool", "data", *extra)}
    for directory in dirs.values():
        directory.mkdir()
    port = free_port()
    master = Path("/etc/postfix/master.cf").read_text()
    master = re.sub(r"(?m)^smtp\s+inet.*$", f"127.0.0.1:{port} inet n - n - - smtpd", master)
    master = re.sub(r"(?m)^(\S+\s+\S+\s+\S+\s+\S+\s+)[y-]", r"\1n", master)
    (dirs["etc"] / "master.cf").write_text(master)
    (dirs["etc"] / "main.cf").write_text("")
    return base, dirs, port


def bench_account(engine: Any) -> Any:
    """One account (bench@example.test) made with plain SQL, as nmail.directory's Account."""
    from sqlalchemy import insert

    from nmail.db.tables import accounts, domains
    from nmail.directory.model import Account

    with engine.begin() as conn:
        domain_id = conn.execute(insert(domains).values(name="example.test", created_at=0)
                                 ).inserted_primary_key[0]
        account_id = conn.execute(insert(accounts).values(
            domain_id=domain_id, userid="bench", display_name="Bench", password_hash="x",
            quota_bytes=0, is_admin=False, is_server_admin=False, receive_enabled=True,
            login_enabled=True, created_at=0)).inserted_primary_key[0]
    return Account(id=int(account_id), domain="example.test", userid="bench",
                   display_name="Bench", quota_bytes=0, is_admin=False, is_server_admin=False,
                   receive_enabled=True, login_enabled=True)


def percentiles_ms(samples: Sequence[float]) -> tuple[float, float]:
    """p50 and p99 of `samples` (seconds), in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def control(pid: int, *args: str) -> None:
    """callgrind_control ARGS PID (zero the counters, dump them) for a process under callgrind."""
    subprocess.run(["callgrind_control", *args, str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def dumped_total(path: Path) -> int:
    """The instruction count a callgrind dump file states (its summary: or totals: line)."""
    found = re.search(r"^(?:summary|totals):\s+(\d+)", path.read_text(errors="replace"), re.M)
    if found is None:
        raise RuntimeError(f"no summary in {path}")
    return int(found.group(1))
