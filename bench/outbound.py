"""Outbound delivery throughput: nmail's queue against Postfix, same load, same run.

    python bench/outbound.py [-n 2000] [--size 10240] [--sessions 20]

A loopback SMTP sink (its own process, so it steals no CPU from the queue
under test) counts what arrives. Two figures per system:

- drain: N messages already queued, delivered to the sink (msg/s). nmail:
  N `enqueue` calls first, then the scheduler starts. Postfix: N messages
  injected with `smtp-source` while `defer_transports = smtp` holds them,
  then released with `postqueue -f`.
- end to end: the scheduler runs while N messages arrive from `--sessions`
  threads (nmail, through `enqueue` as the intake calls it) or SMTP
  sessions (Postfix, `smtp-source`); timed until the sink has all N.

Postfix is a private instance under /var/tmp (nothing in /etc/postfix
changes) relaying to the sink with `relayhost = [127.0.0.1]:PORT`, when
/usr/sbin/postfix exists; otherwise only nmail is measured. Prints the
figures and the nmail/Postfix ratio; never asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

from benchlib import free_port, private_postfix, wait_for

ROOT = Path("/var/tmp")  # file creation under /tmp is much slower on these machines
POSTFIX = Path("/usr/sbin/postfix")
SMTP_SOURCE = Path("/usr/sbin/smtp-source")


# -- the sink ------------------------------------------------------------------------


class SinkProtocol(asyncio.Protocol):
    """Accepts everything; counts each message once its final dot arrives."""

    def __init__(self, counter: Synchronized) -> None:  # type: ignore[type-arg]
        self.counter = counter
        self.buffer = b""
        self.in_data = False
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:  # uvloop's is no asyncio.Transport
        self.transport = transport
        transport.write(b"220 sink.bench ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        out: list[bytes] = []
        while True:
            if self.in_data:
                if self.buffer.startswith(b".\r\n"):
                    end, skip = 0, 3
                else:
                    end = self.buffer.find(b"\r\n.\r\n")
                    skip = 5
                if end < 0:
                    break
                self.buffer = self.buffer[end + skip :]
                self.in_data = False
                with self.counter.get_lock():
                    self.counter.value += 1
                out.append(b"250 2.0.0 Ok: queued\r\n")
                continue
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                break
            line = self.buffer[:line_end]
            self.buffer = self.buffer[line_end + 2 :]
            verb = line[:4].upper()
            if verb == b"EHLO":
                out.append(b"250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                           b"250 SIZE 100000000\r\n")
            elif verb == b"DATA":
                self.in_data = True
                out.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"QUIT":
                out.append(b"221 2.0.0 Bye\r\n")
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            else:
                out.append(b"250 2.0.0 Ok\r\n")
        if out:
            self.transport.write(b"".join(out))


def sink_main(port: int, counter: Synchronized, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[type-arg]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SinkProtocol(counter), "127.0.0.1", port,
                                          backlog=512)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


class Sink:
    """The sink process and its shared counter."""

    def __init__(self) -> None:
        self.port = free_port()
        ctx = multiprocessing.get_context("spawn")
        self.counter: Synchronized = ctx.Value("i", 0)  # type: ignore[type-arg]
        ready = ctx.Event()
        self.process = ctx.Process(target=sink_main, args=(self.port, self.counter, ready),
                                   daemon=True)
        self.process.start()
        if not ready.wait(30):
            raise SystemExit("the sink did not start")

    @property
    def count(self) -> int:
        return int(self.counter.value)

    def reset(self) -> None:
        with self.counter.get_lock():
            self.counter.value = 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


# -- helpers ---------------------------------------------------------------------------


def make_message(i: int, size: int) -> bytes:
    head = (
        f"From: a@test.local\r\nTo: b@bench.test\r\nSubject: bench {i}\r\n"
        f"Message-ID: <{i}.{time.time_ns()}@test.local>\r\n\r\n"
    ).encode()
    line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\r\n"
    body = (line * (size // len(line) + 1))[: max(0, size - len(head) - 2)]
    return head + body + b"\r\n"


# -- nmail -----------------------------------------------------------------------------


def bench_nmail(sink: Sink, n: int, size: int, sessions: int) -> tuple[float, float, float]:
    """(enqueue msg/s, drain msg/s, end-to-end msg/s)."""
    from nmail.config import Config
    from nmail.db.engine import make_engine
    from nmail.db.migrate import upgrade
    from nmail.queue.outbound import OutboundQueue
    from nmail.queue.store import DELIVERED

    base = Path(tempfile.mkdtemp(prefix="nmail-outbound-", dir=ROOT))
    engine = make_engine(f"sqlite:///{base / 'index.sqlite3'}")
    upgrade(engine)
    config = Config(
        data_dir=base, hostname="nmail.bench", database_url=str(engine.url),
        transport={"bench.test": f"smtp:[127.0.0.1]:{sink.port}"},
    )
    queue = OutboundQueue(engine, base / "queue", config, node_id="bench")
    messages = [make_message(i, size) for i in range(n)]

    def enqueue_all(pool: ThreadPoolExecutor) -> None:
        list(pool.map(lambda m: queue.enqueue("a@test.local", ["b@bench.test"], m), messages))

    def all_recorded() -> bool:
        from sqlalchemy import func, select

        from nmail.db.tables import queue_recipients as r

        with engine.connect() as conn:
            left = conn.execute(
                select(func.count()).select_from(r).where(r.c.state != DELIVERED)
            ).scalar_one()
        return int(left) == 0

    async def run_queue(until: Callable[[], bool]) -> None:
        task = asyncio.create_task(queue.run())
        while not until():  # noqa: ASYNC110 - polling another process's counter
            await asyncio.sleep(0.005)
        await queue.stop()
        await task

    try:
        try:
            import uvloop

            runner: Callable[..., object] = uvloop.run
        except ImportError:
            runner = asyncio.run
        with ThreadPoolExecutor(sessions) as pool:
            # drain: everything queued first
            sink.reset()
            start = time.perf_counter()
            enqueue_all(pool)
            enqueue_rate = n / (time.perf_counter() - start)
            start = time.perf_counter()
            runner(run_queue(lambda: sink.count >= n and all_recorded()))
            drain_rate = n / (time.perf_counter() - start)
            # end to end: the intake and the scheduler at the same time
            sink.reset()

            async def both() -> None:
                loop = asyncio.get_running_loop()
                feeding = loop.run_in_executor(None, enqueue_all, pool)
                await run_queue(lambda: sink.count >= n and feeding.done() and all_recorded())
                await feeding

            start = time.perf_counter()
            runner(both())
            e2e_rate = n / (time.perf_counter() - start)
        return enqueue_rate, drain_rate, e2e_rate
    finally:
        engine.dispose()
        shutil.rmtree(base, ignore_errors=True)


# -- Postfix ---------------------------------------------------------------------------


def inject(port: int, n: int, sessions: int, size: int) -> None:
    subprocess.run(
        [str(SMTP_SOURCE), "-s", str(sessions), "-l", str(size), "-m", str(n),
         "-f", "a@test.local", "-t", "b@bench.test", f"127.0.0.1:{port}"],
        check=True, stdout=subprocess.DEVNULL,
    )


def bench_postfix(sink: Sink, n: int, size: int, sessions: int) -> tuple[float, float] | None:
    """(drain msg/s, end-to-end msg/s), or None without Postfix."""
    if not POSTFIX.exists() or not SMTP_SOURCE.exists():
        return None
    base, dirs, port = private_postfix(ROOT, "pf-outbound-")
    etc, spool, data = dirs["etc"], dirs["spool"], dirs["data"]
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": spool,
        "data_directory": data,
        "shlib_directory": "/usr/lib/postfix",
        "daemon_directory": "/usr/lib/postfix/sbin",
        "meta_directory": "/etc/postfix",
        "myhostname": "postfix.bench",
        "inet_interfaces": "loopback-only",
        "inet_protocols": "ipv4",
        "mydestination": "",
        "relayhost": f"[127.0.0.1]:{sink.port}",
        "disable_dns_lookups": "yes",
        "smtpd_peername_lookup": "no",
        "mynetworks": "127.0.0.0/8",
        "smtpd_relay_restrictions": "permit_mynetworks, reject",
        "alias_maps": "",
        "alias_database": "",
        "smtp_tls_security_level": "none",
        "syslog_name": "pfoutbound",
        "maillog_file": data / "maillog",
        "defer_transports": "smtp",
    }
    postconf(etc, settings)
    shutil.chown(data, "postfix")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(["postfix", "-c", str(etc), "start"], check=True, **quiet)  # type: ignore[call-overload]
    try:
        wait_for(lambda: listening(port), 30, "postfix to listen", poll=0.005)

        def drained() -> bool:
            return sink.count >= n and queued_files(spool) == 0

        # drain: hold everything with defer_transports, then release it
        sink.reset()
        inject(port, n, sessions, size)
        wait_for(lambda: queued_files(spool) >= n, 120, "postfix to queue the load", poll=0.005)
        postconf(etc, {"defer_transports": ""})
        subprocess.run(["postfix", "-c", str(etc), "reload"], check=True, **quiet)  # type: ignore[call-overload]
        # The reload is asynchronous: a flush that reaches the old queue manager
        # (still deferring) only defers everything again, for minutes. Flush
        # until mail starts to flow, and time from the flush that did it.
        for _ in range(60):
            start = time.perf_counter()
            subprocess.run(["postqueue", "-c", str(etc), "-f"], check=True, **quiet)  # type: ignore[call-overload]
            if flowing(sink, 2.0):
                break
        wait_for(drained, 600, "postfix to drain", poll=0.005)
        drain_rate = n / (time.perf_counter() - start)
        # end to end
        sink.reset()
        start = time.perf_counter()
        inject(port, n, sessions, size)
        wait_for(drained, 600, "postfix to relay", poll=0.005)
        e2e_rate = n / (time.perf_counter() - start)
        return drain_rate, e2e_rate
    finally:
        subprocess.run(["postfix", "-c", str(etc), "stop"], **quiet)  # type: ignore[call-overload]
        shutil.rmtree(base, ignore_errors=True)


def postconf(etc: Path, settings: dict[str, object]) -> None:
    subprocess.run(
        ["postconf", "-c", str(etc), "-e", *(f"{k}={v}" for k, v in settings.items())],
        check=True,
    )


def flowing(sink: Sink, within: float) -> bool:
    """Whether the sink gets a message within `within` seconds."""
    deadline = time.monotonic() + within
    while sink.count == 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def queued_files(spool: Path) -> int:
    """Messages in Postfix's incoming, active and deferred queues."""
    total = 0
    for name in ("incoming", "active", "deferred"):
        for _root, _dirs, files in os.walk(spool / name):
            total += len(files)
    return total


# -- main ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="messages per measurement")
    parser.add_argument("--size", type=int, default=10240, help="message size in bytes")
    parser.add_argument("--sessions", type=int, default=20, help="parallel injectors")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    print(f"outbound: {args.n} messages of {args.size} bytes to a loopback sink, "
          f"{args.sessions} parallel injectors")
    sink = Sink()
    try:
        enq, drain, e2e = bench_nmail(sink, args.n, args.size, args.sessions)
        print(f"nmail:   {drain:8.0f} msg/s drain   {e2e:8.0f} msg/s end to end"
              f"   ({enq:.0f} msg/s enqueue alone)")
        peer = bench_postfix(sink, args.n, args.size, args.sessions)
    finally:
        sink.stop()
    if peer is None:
        print("postfix: not installed (/usr/sbin/postfix, smtp-source), peer skipped")
        return
    pf_drain, pf_e2e = peer
    print(f"postfix: {pf_drain:8.0f} msg/s drain   {pf_e2e:8.0f} msg/s end to end")
    print(f"ratio nmail/postfix: drain {drain / pf_drain:.2f}x, end to end {e2e / pf_e2e:.2f}x"
          " (target >= 1.0x)")


if __name__ == "__main__":
    main()
