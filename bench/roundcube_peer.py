"""Roundcube 1.6 on a private Dovecot IMAP, php-fpm and nginx, for bench/webmail.py.

Install (Debian 12; the bench only, never CI), with debconf answers so the
package puts Roundcube's own database in SQLite and touches no web server:

    printf '%s\\n' \\
      'roundcube-core roundcube/dbconfig-install boolean true' \\
      'roundcube-core roundcube/database-type select sqlite3' \\
      'roundcube-core roundcube/reconfigure-webserver multiselect' \\
      'roundcube-core roundcube/restart-webserver boolean false' | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y roundcube roundcube-core \\
      roundcube-sqlite3 php8.2-fpm nginx-light        # plus dovecot-imapd

Nothing under /etc is changed or used for state. Every daemon is a private
instance under the bench's directory, started in the foreground in its own
session (so the bench can stop each whole group, also on Ctrl-C):

- Dovecot (IMAP only, `ssl = no`, passwd-file, static userdb, loopback port)
  over the very Maildir the nmail account uses; its index and control files
  (dovecot-uidlist) live beside, not in, the Maildir. Its mail processes run
  as `nobody` (Dovecot refuses uid 0), so the Maildir is handed to `nobody`
  and its parents get o+x at every start (`nmail serve` takes them away at
  its own start): nmail, as root, reads it all the same.
- php-fpm with its own global and pool config (unix socket, workers as
  www-data). Roundcube reads its config from the directory named by the
  ROUNDCUBE_CONFIG_DIR environment variable (Debian's iniset.php honours it),
  which each pool sets to the bench's own directory: config.inc.php written
  here, defaults.inc.php linked from /etc/roundcube. Two pools, two configs:
  Roundcube's defaults (no cache, as REFERENCE.md measured), and the same
  with its SQL caches on (`imap_cache` and `messages_cache` = db).
- nginx with its own config: one loopback port per pool, Debian's
  public_html as root, PHP to the pool's socket, no access log.

Stock settings otherwise: 50 messages a page, no sort column (Dovecot's
order, newest first), a message marked read when shown (`mail_read_time`
0), Dovecot's login processes one per connection. Roundcube opens a new
IMAP connection (a login) for every HTTP request; that is its design.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

DOVECOT = Path("/usr/sbin/dovecot")
NGINX = Path("/usr/sbin/nginx")
PHP_FPM = Path("/usr/sbin/php-fpm8.2")
ROUNDCUBE_ETC = Path("/etc/roundcube")
ROUNDCUBE_WEB = Path("/var/lib/roundcube/public_html")
NOBODY = 65534
VARIANTS = ("plain", "cached")


def missing() -> list[str]:
    """What is not installed for the Roundcube peer (empty: all there)."""
    needed = [DOVECOT, NGINX, PHP_FPM, ROUNDCUBE_ETC / "defaults.inc.php",
              ROUNDCUBE_WEB / "index.php", Path("/usr/lib/dovecot/imap")]
    return [str(p) for p in needed if not p.exists()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: object, what: str, proc: subprocess.Popen[bytes], log: Path,
          timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not start (exit {proc.poll()}): {tail.strip()}")
        time.sleep(0.05)


def _answers(port: int, greeting: bytes) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            return greeting == b"" or sock.recv(100).startswith(greeting)
    except OSError:
        return False


def _cpu_of_group(pgid: int) -> float:
    """CPU seconds of a process group: every live member, plus the children the
    leader already reaped (Dovecot's per-connection imap processes end quickly)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) != pgid:
            continue
        total += int(fields[11]) + int(fields[12])
        if int(pid) == pgid:
            total += int(fields[13]) + int(fields[14])
    return total / os.sysconf("SC_CLK_TCK")


def _open_parents(path: Path, upto: Path) -> None:
    """o+x on `path` and its parents up to `upto`, so `nobody` can walk in."""
    for part in (path, *path.parents):
        part.chmod(part.stat().st_mode | 0o001)
        if part == upto:
            break


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(top):
        os.chown(dirpath, uid, gid)
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


@dataclass
class PeerStack:
    """Dovecot + php-fpm + nginx + Roundcube, private to one bench directory."""

    root: Path  # the bench's directory (owns `maildir` somewhere below)
    maildir: Path
    user: str
    password: str
    imap_port: int = field(default_factory=_free_port)
    http_ports: dict[str, int] = field(
        default_factory=lambda: {v: _free_port() for v in VARIANTS})
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def base(self) -> Path:
        return self.root / "peers"

    # -- setup ---------------------------------------------------------------

    def prepare(self) -> None:
        """Write every config; hand the Maildir to `nobody` (nmail must be stopped)."""
        base = self.base
        for sub in ("dovecot/run", "dovecot/state", "dovecot/index", "dovecot/control",
                    "dovecot/home", "nginx/tmp", "php"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        _open_parents(self.maildir, self.root)
        _open_parents(base, self.root)
        for sub in ("", "dovecot", "nginx", "php"):
            (base / sub).chmod(0o755)
        _chown_tree(self.maildir, NOBODY, NOBODY)
        for sub in ("index", "control", "home"):
            _chown_tree(base / "dovecot" / sub, NOBODY, NOBODY)
        self._write_dovecot()
        for variant in VARIANTS:
            self._write_roundcube(variant)
        self._write_php_fpm()
        self._write_nginx()

    def _write_dovecot(self) -> None:
        d = self.base / "dovecot"
        (d / "passwd").write_text(
            f"{self.user}:{{PLAIN}}{self.password}:{NOBODY}:{NOBODY}::{d / 'home'}\n")
        (d / "dovecot.conf").write_text(f"""
base_dir = {d / 'run'}
state_dir = {d / 'state'}
log_path = {d / 'dovecot.log'}
instance_name = nmail-bench-imap-{os.getpid()}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 500
first_valid_gid = 500
mail_location = maildir:{self.maildir}:INDEX={d / 'index'}:CONTROL={d / 'control'}
passdb {{
  driver = passwd-file
  args = {d / 'passwd'}
}}
userdb {{
  driver = static
  args = uid={NOBODY} gid={NOBODY} home={d / 'home'}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
""")

    def _write_roundcube(self, variant: str) -> None:
        rc = self.base / f"roundcube-{variant}"
        for sub in ("config", "logs", "temp"):
            (rc / sub).mkdir(parents=True, exist_ok=True)
        for name in ("defaults.inc.php", "mimetypes.php"):
            link = rc / "config" / name
            if not link.exists():
                link.symlink_to(ROUNDCUBE_ETC / name)
        cache = ("$config['imap_cache'] = 'db';\n$config['messages_cache'] = 'db';\n"
                 if variant == "cached" else
                 "$config['imap_cache'] = null;\n$config['messages_cache'] = false;\n")
        (rc / "config" / "config.inc.php").write_text(f"""<?php
$config = [];
$config['db_dsnw'] = 'sqlite:///{rc / 'roundcube.db'}?mode=0640';
$config['imap_host'] = '127.0.0.1:{self.imap_port}';
$config['smtp_host'] = '';
$config['des_key'] = '{secrets.token_hex(12)}';
$config['plugins'] = [];
$config['skin'] = 'elastic';
$config['log_dir'] = '{rc / 'logs'}/';
$config['temp_dir'] = '{rc / 'temp'}/';
$config['enable_spellcheck'] = false;
$config['enable_installer'] = false;
$config['login_rate_limit'] = 0;
{cache}""")
        for path in (rc, *rc.rglob("*")):
            os.chown(path, 33, 33, follow_symlinks=False)  # www-data

    def _write_php_fpm(self) -> None:
        php = self.base / "php"
        pools = "".join(f"""
[{variant}]
user = www-data
group = www-data
listen = {php / (variant + '.sock')}
listen.mode = 0666
pm = dynamic
pm.max_children = 5
pm.start_servers = 2
pm.min_spare_servers = 1
pm.max_spare_servers = 3
clear_env = yes
env[ROUNDCUBE_CONFIG_DIR] = {self.base / f'roundcube-{variant}' / 'config'}
""" for variant in VARIANTS)
        (php / "php-fpm.conf").write_text(f"""[global]
pid = {php / 'php-fpm.pid'}
error_log = {php / 'php-fpm.log'}
daemonize = no
{pools}""")

    def _write_nginx(self) -> None:
        n = self.base / "nginx"
        servers = "".join(f"""
  server {{
    listen 127.0.0.1:{port};
    root {ROUNDCUBE_WEB};
    index index.php;
    location ~ \\.php$ {{
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_pass unix:{self.base / 'php' / (variant + '.sock')};
    }}
  }}""" for variant, port in self.http_ports.items())
        temps = " ".join(f"{kind}_temp_path {n / 'tmp' / kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (n / "nginx.conf").write_text(f"""
pid {n / 'nginx.pid'};
error_log {n / 'error.log'};
worker_processes 1;
events {{ worker_connections 64; }}
http {{
  include /etc/nginx/mime.types;
  access_log off;
  {temps}
{servers}
}}
""")

    # -- running ---------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True)
        self.procs[name] = proc
        return proc

    def start(self) -> None:
        """Start every daemon; call it after `nmail serve` started, which takes the
        others' bits off the data directory and mail/ at each start."""
        _open_parents(self.maildir, self.root)
        d, php, n = self.base / "dovecot", self.base / "php", self.base / "nginx"
        proc = self._spawn("dovecot", [str(DOVECOT), "-F", "-c", str(d / "dovecot.conf")],
                           d / "stderr.log")
        _wait(lambda: _answers(self.imap_port, b"* OK"), "dovecot", proc, d / "dovecot.log")
        proc = self._spawn("php-fpm", [str(PHP_FPM), "--nodaemonize", "--fpm-config",
                                       str(php / "php-fpm.conf")], php / "stderr.log")
        _wait(lambda: all((php / f"{v}.sock").exists() for v in VARIANTS), "php-fpm", proc,
              php / "php-fpm.log")
        proc = self._spawn("nginx", [str(NGINX), "-e", str(n / "error.log"), "-c",
                                     str(n / "nginx.conf"), "-g", "daemon off;"],
                           n / "stderr.log")
        _wait(lambda: all(_answers(p, b"") for p in self.http_ports.values()), "nginx", proc,
              n / "error.log")

    def stop(self) -> None:
        """Stop every daemon (TERM to each group, KILL after 15 s); safe to call twice."""
        for name in ("nginx", "php-fpm", "dovecot"):
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            proc.terminate()  # the master stops its own children
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
            with contextlib.suppress(ProcessLookupError):  # stragglers: a login, a php worker
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def restart(self, drop_index: bool = False) -> None:
        """Stop and start every daemon; with `drop_index`, Dovecot's index files
        (dovecot.index*, its header cache) go too, its dovecot-uidlist stays."""
        self.stop()
        if drop_index:
            for path in (self.base / "dovecot" / "index").rglob("dovecot.index*"):
                path.unlink()
        self.start()

    def cpu_seconds(self) -> float:
        """CPU time the whole stack has used (nginx, php-fpm, Dovecot and its children)."""
        return sum(_cpu_of_group(p.pid) for p in self.procs.values())

    def dovecot_uids(self) -> dict[int, int]:
        """nmail's INBOX UID -> Dovecot's, from dovecot-uidlist (nmail's file names
        carry `,U=<uid>`; Dovecot keeps the base name)."""
        control = self.base / "dovecot" / "control"
        uidlist = next(p for p in (control / ".INBOX" / "dovecot-uidlist",
                                   control / "dovecot-uidlist") if p.exists())
        mapping = {}
        for line in uidlist.read_text(errors="replace").splitlines()[1:]:
            found = re.match(r"(\d+)\b.*:.*,U=(\d+)", line)
            if found:
                mapping[int(found.group(2))] = int(found.group(1))
        return mapping


class RoundcubeClient:
    """Roundcube's HTTP as its own pages drive it (REFERENCE.md)."""

    def __init__(self, port: int) -> None:
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        self.request_token = ""

    def close(self) -> None:
        self.http.close()

    def login(self, user: str, password: str) -> None:
        form = self.http.get("/?_task=login").text
        token = re.search(r'name="_token" value="([^"]+)"', form)
        if token is None:
            raise RuntimeError("Roundcube's login page has no _token")
        answer = self.http.post("/?_task=login", data={
            "_token": token.group(1), "_task": "login", "_action": "login",
            "_timezone": "Asia/Seoul", "_url": "", "_user": user, "_pass": password})
        if answer.status_code != 302:
            raise RuntimeError(f"Roundcube login failed: HTTP {answer.status_code}")

    def mail_page(self) -> httpx.Response:
        """The mail screen (folders, toolbar; its list comes by `list`)."""
        response = self.http.get("/?_task=mail&_mbox=INBOX")
        found = re.search(r'"request_token":"([^"]+)"', response.text)
        if response.status_code != 200 or found is None:
            raise RuntimeError(f"Roundcube mail page: HTTP {response.status_code}")
        self.request_token = found.group(1)
        return response

    def list_page(self, page: int = 1) -> httpx.Response:
        return self.http.get(
            f"/?_task=mail&_action=list&_mbox=INBOX&_page={page}&_remote=1",
            headers={"X-Roundcube-Request": self.request_token,
                     "X-Requested-With": "XMLHttpRequest"})

    def show(self, uid: int) -> httpx.Response:
        return self.http.get(f"/?_task=mail&_action=show&_uid={uid}&_mbox=INBOX")


def listed_uids(response: httpx.Response) -> list[int]:
    """The UIDs of the rows in a list answer (its `exec` adds one row per message)."""
    script = json.loads(response.text).get("exec", "")
    return [int(u) for u in re.findall(r"add_message_row\((\d+),", script)]


def sample_uids(mapping: dict[int, int], wanted: Iterable[int]) -> list[int]:
    """Dovecot's UIDs for nmail's `wanted` ones (a UID Dovecot does not know is left out)."""
    return [mapping[u] for u in wanted if u in mapping]
