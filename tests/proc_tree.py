"""What /proc says about a running `nmail serve`: its processes, limits, memory, sockets."""

from __future__ import annotations

import os
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may hold spaces: split after it.
    return text[text.rindex(")") + 2 :].split()


def alive(pid: int) -> bool:
    """Running (a zombie counts as gone)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children ...), zombies left out."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found += kids
        todo += kids
    return found


def group_members(pgid: int) -> list[int]:
    """Every live process of process group `pgid` (zombies left out)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
                found.append(int(entry))
    return found


def cpu_ticks(pid: int) -> int:
    """User + system CPU time so far, in clock ticks (0 once gone)."""
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0


def rss_bytes(pid: int) -> int:
    """Resident memory now (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def open_file_limit(pid: int) -> tuple[int, int]:
    """(soft, hard) RLIMIT_NOFILE of a process."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open file limit for {pid}")


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP `port` (IPv4 and IPv6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[1].rsplit(":", 1)[1] == f"{port:04X}" and cols[3] == "0A":
                found.add(cols[9])
    return found


def holders(pids: list[int], port: int) -> list[int]:
    """Which of `pids` hold the listening socket of `port`."""
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    result = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except FileNotFoundError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    result.append(pid)
                    break
            except FileNotFoundError:
                continue
    return result


def peer_inodes(client: tuple[str, int]) -> set[str]:
    """Socket inodes of the TCP connections whose far end is `client` (host, port):
    the server's ends of a client's connection (IPv4 loopback)."""
    host, port = client
    far = "".join(f"{int(part):02X}" for part in reversed(host.split("."))) + f":{port:04X}"
    found: set[str] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[2] == far and cols[9] != "0":
            found.add(cols[9])
    return found


def holds_connection(pid: int, client: tuple[str, int]) -> bool:
    """Whether `pid` holds the server's end of the connection from `client`
    (found by that connection alone: the other sockets the process opens or
    closes meanwhile, a feed subscription say, do not count)."""
    wanted = {f"socket:[{inode}]" for inode in peer_inodes(client)}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                return True
        except FileNotFoundError:
            continue
    return False
