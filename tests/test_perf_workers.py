"""`nmail serve` with worker processes, as a real process tree on loopback."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import select

from crashed_writer import killed_writer
from fixtures_smtp_sink import SmtpSink
from nmail.certs import generate_self_signed
from nmail.config import load_config
from nmail.db.engine import make_engine
from nmail.db.tables import messages
from serve_process import NMAIL, ServeProcess
from support import LoopThread, free_port, wait_until

BODY = b"From: a@remote.example\r\nTo: bob@test.local\r\nSubject: hi\r\n\r\nHello.\r\n"


def nmail(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NMAIL, "--data", str(data), *args], capture_output=True, text=True, timeout=120
    )


def children(pid: int) -> set[int]:
    """Processes whose parent is `pid`."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.add(int(entry))
    return found


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    assert nmail(d, "init", "--hostname", "mail.example.com").returncode == 0
    cfg = d / "nmail.toml"
    cfg.write_text(re.sub(r'(?m)^(\w+) = "0\.0\.0\.0"$', r'\1 = "off"', cfg.read_text()))
    assert nmail(d, "domain", "add", "test.local").returncode == 0
    assert nmail(d, "user", "add", "test.local", "Bob", "bob", "Correct-horse-9").returncode == 0
    return d


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def served(data: Path, port: int) -> Iterator[ServeProcess]:
    srv = ServeProcess(data, f"smtp=127.0.0.1:{port}", workers=2)
    yield srv
    if srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait(30)


def send(port: int, rcpt: str = "bob@test.local") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("a@remote.example", [rcpt], BODY)


def index_uids(data: Path) -> list[int]:
    engine = make_engine(load_config(data).database_url)
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(select(messages.c.uid)).scalars())
    finally:
        engine.dispose()


def inbox(data: Path) -> Path:
    return data / "mail" / "test.local" / "bob" / "Maildir"


def test_workers_share_the_port_and_stop_gracefully(
    data: Path, port: int, served: ServeProcess
) -> None:
    tree = children(served.proc.pid)
    assert len(tree) == 4  # two workers, the index writer and the search process
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda _: send(port), range(40)))
    assert index_uids(data) == list(range(1, 41))
    assert len(list((inbox(data) / "new").iterdir())) == 40
    assert list((inbox(data) / "tmp").iterdir()) == []
    status, out = served.stop()
    assert status == 0
    assert len(re.findall("listening:", out)) == 1
    wait_until(lambda: not any(Path(f"/proc/{pid}/stat").exists() for pid in tree), 30)


def test_a_directory_change_from_the_cli_applies_to_every_worker(
    data: Path, port: int, served: ServeProcess
) -> None:
    for _ in range(6):
        send(port)  # every worker has bob in its cache now (most likely)
    assert nmail(data, "user", "disable", "bob@test.local").returncode == 0
    for _ in range(10):  # fresh connections land on either worker
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo("client.example")
            client.mail("a@remote.example")
            code, text = client.rcpt("bob@test.local")
            assert (code, text.split()[0]) == (550, b"5.2.1")
    assert nmail(data, "user", "enable", "bob@test.local").returncode == 0
    send(port)
    assert len(index_uids(data)) == 7


def test_startup_repair_runs_once(data: Path, port: int) -> None:
    # A file that reached new/ without its row (a crash between the two).
    new = inbox(data) / "new"
    killed_writer(data / "mail", f"Path({str(new / '1700000000.M1P1Q1.crashed')!r})"
                                 f".write_bytes({BODY!r})")
    srv = ServeProcess(data, f"smtp=127.0.0.1:{port}", workers=2)
    try:
        assert sum("index repair:" in line for line in srv.lines) == 1
        assert index_uids(data) == [1]
        send(port)
        assert index_uids(data) == [1, 2]
    finally:
        status, out = srv.stop()
    assert status == 0
    assert out.count("index repair:") == 1


def test_dead_processes_are_replaced(data: Path, port: int, served: ServeProcess) -> None:
    send(port)
    before = children(served.proc.pid)
    for pid in before:  # both workers, the index writer and the search process
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: len(children(served.proc.pid) - before) == 4, 60, "four new processes")

    def delivered() -> bool:
        try:
            send(port)
        except (smtplib.SMTPException, OSError):
            return False  # a transaction caught mid-restart: 4xx, the client retries
        return True

    wait_until(delivered, 60, "a delivery after the restart")
    for _ in range(5):
        send(port)
    uids = index_uids(data)
    assert uids == list(range(1, len(uids) + 1)) and len(uids) >= 7
    status, _ = served.stop()
    assert status == 0


def _cert_subject(port: int) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        client.starttls(context=ctx)
        assert isinstance(client.sock, ssl.SSLSocket)
        der = client.sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


def test_sighup_reloads_the_certificate_in_every_worker(
    data: Path, port: int, served: ServeProcess
) -> None:
    assert _cert_subject(port) == "CN=mail.example.com"
    generate_self_signed("renewed.example.com", data / "tls" / "cert.pem", data / "tls" / "key.pem")
    served.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: _cert_subject(port) == "CN=renewed.example.com", 30, "reload")
    # Every connection now, whichever worker accepts it, shows the new one.
    assert {_cert_subject(port) for _ in range(12)} == {"CN=renewed.example.com"}
    status, _ = served.stop()
    assert status == 0


def test_mail_queued_by_any_worker_is_sent_once(data: Path, port: int) -> None:
    loop = LoopThread()
    sink = loop.run(SmtpSink("127.0.0.1").start())
    cfg = data / "nmail.toml"
    cfg.write_text(
        cfg.read_text().replace(
            "[transport]", f'[transport]\n"remote.example" = "smtp:[127.0.0.1]:{sink.port}"'
        )
    )
    srv = ServeProcess(data, f"smtp=127.0.0.1:{port}", workers=2)
    try:
        for n in range(8):
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.sendmail("a@remote.example", [f"user{n}@remote.example"], BODY)
        wait_until(lambda: len(sink.received) >= 8, 60, "every message at the sink")
        got = sorted(r.rcpts[0] for r in sink.received)
        assert got == sorted(f"user{n}@remote.example" for n in range(8))
    finally:
        status, _ = srv.stop()
        loop.run(sink.stop())
        loop.close()
    assert status == 0


@pytest.mark.parametrize("value", ["0", "-1", "many", "1000"])
def test_a_bad_worker_count_is_one_line(data: Path, port: int, value: str) -> None:
    result = nmail(data, "serve", "--workers", value, "--listen", f"smtp=127.0.0.1:{port}")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--workers" in result.stderr
    cfg = data / "nmail.toml"
    cfg.write_text(cfg.read_text().replace("[smtp]", f'[smtp]\nworkers = "{value}"'))
    result = nmail(data, "serve", "--listen", f"smtp=127.0.0.1:{port}")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "[smtp] workers" in result.stderr


def test_a_port_in_use_is_one_line_with_workers(data: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        result = nmail(data, "serve", "--workers", "2", "--listen", f"smtp=127.0.0.1:{taken}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"nmail: error: cannot listen on 127.0.0.1:{taken}: Address already in use"
    ]


def test_default_worker_count_is_one_per_cpu_up_to_four(monkeypatch: pytest.MonkeyPatch) -> None:
    from nmail.cli import serve_cmd

    for cpus, expected in ((None, 1), (1, 1), (2, 2), (4, 4), (64, 4)):
        monkeypatch.setattr(serve_cmd.os, "cpu_count", lambda cpus=cpus: cpus)
        assert serve_cmd.default_workers() == expected


def test_connection_limit_counts_every_worker(data: Path, port: int) -> None:
    """[smtp] max_connections holds for the listener, whichever worker accepts."""
    cfg = data / "nmail.toml"
    cfg.write_text(cfg.read_text().replace("max_connections = 1000        # open SMTP",
                                           "max_connections = 4        # open SMTP"))
    srv = ServeProcess(data, f"smtp=127.0.0.1:{port}", workers=2)
    held: list[socket.socket] = []
    try:

        def banner(sock: socket.socket) -> bytes:
            got = b""
            while not got.endswith(b"\r\n"):
                chunk = sock.recv(512)
                if not chunk:
                    break
                got += chunk
            return got

        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            held.append(sock)
            assert banner(sock).startswith(b"220 ")
        for _ in range(4):  # whichever worker takes them: the listener is full
            with socket.create_connection(("127.0.0.1", port), timeout=30) as extra:
                assert banner(extra).startswith(b"421 4.3.2 ")
        held.pop().close()

        def admitted() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as again:
                return banner(again).startswith(b"220 ")

        wait_until(admitted, 30)
    finally:
        for sock in held:
            sock.close()
        srv.stop()
