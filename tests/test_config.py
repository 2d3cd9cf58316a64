"""nmail.toml loading, listener selection, and their bad inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmail import config as cfg
from nmail import config_listen
from nmail.config import ConfigError, load_config
from nmail.config_listen import Listen, listeners_from, parse_listen
from nmail.config_template import render_default_config


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "nmail.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_the_template_loads_with_its_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, render_default_config("mail.example.com", None)))
    assert config.hostname == "mail.example.com"
    assert config.domain == "example.com"
    assert config.database_url == f"sqlite:///{tmp_path / 'index.sqlite3'}"
    assert config.smtp.max_recipients == 100
    assert config.smtp.max_hops == 30
    assert config.queue.first_retry == 300
    assert config.queue.max_retry == 4 * 3600
    assert config.queue.give_up_after == 5 * 86400
    assert config.tls.cert == tmp_path / "tls" / "cert.pem"
    assert set(config.listeners) == {"smtp", "submission", "submissions", "pop3", "pop3s", "http"}


def test_a_minimal_file_gets_every_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[server]\nhostname = "mx.example.org"\n'))
    assert config.smtp.max_message_size == 50 * 1024 * 1024
    assert config.listeners == {}
    assert config.relay is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[server\n", "nmail.toml"),
        ('[listen]\nftp = "0.0.0.0"\n', "[listen] ftp: unknown listener"),
        ('[listen]\nsmtp = "0.0.0.0:99999"\n', "bad port"),
        ('[listen]\nsmtp = "not-an-ip:25"\n', "bad listen host"),
        ('[queue]\nfirst_retry = "soon"\n', "[queue] first_retry"),
        ('[smtp]\nplaintext_auth_networks = ["10.0.0.0/33"]\n', "plaintext_auth_networks"),
        ('[relay]\nhost = "smtp.example.net"\ntls = "maybe"\n', "[relay] tls"),
        ('[relay]\nhost = "h.test"\npassword = "pw"\ntls = "none"\n', "sent in clear"),
        ('[relay]\nhost = "h.test"\nverify_certificate = "no"\n', "verify_certificate"),
        ("[smtpp]\nmax_hops = 5\n", "unknown section or key 'smtpp'"),
        ('queue = "x"\n', "[queue] must be a table"),
        ('[queue]\nmax_connections = "lots"\n', "[queue] max_connections: expected a whole"),
        ("[queue]\nmax_connections = 0\n", "[queue] max_connections: expected 1 to"),
        ('[queue]\nkeep_finished = "-1d"\n', "[queue] keep_finished: a duration cannot be"),
        ("[queue]\nremote_port = 70000\n", "[queue] remote_port: expected 1 to 65535"),
        ("[smtp]\nmax_recipients = true\n", "[smtp] max_recipients: expected a whole"),
        ("[smtp]\nmax_message_size = 1.5\n", "[smtp] max_message_size: expected a whole"),
        ('[relay]\nhost = "smtp.example.net"\nport = "x"\n', "[relay] port: expected a whole"),
        ("[pop3]\nmax_connections = 0\n", "[pop3] max_connections: expected 1 to"),
        ("[smtp]\nrcpt_error_soft_limit = 30\n", "must not exceed rcpt_error_hard_limit"),
        ('[srs]\ndomain = "a b@c"\n', "[srs] domain"),
        ('[srs]\ndomain = "localhost"\n', "[srs] domain"),
        ('[smtp]\nrcpt_error_delay = "1s"\n', "[smtp] rcpt_error_delay: expected seconds"),
        ("[smtp]\nrcpt_error_hard_limit = 0\n", "[smtp] rcpt_error_hard_limit: expected 1"),
        ('[pop3]\nmax_connections_per_ip = "many"\n', "[pop3] max_connections_per_ip: expected"),
    ],
)
def test_bad_files_name_what_is_wrong(tmp_path: Path, text: str, says: str) -> None:
    write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert says in str(err.value)


def test_srs_domain_defaults_to_the_hostname(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, render_default_config("Mail.Example.com", None)))
    assert config.srs_domain == "mail.example.com"
    other = cfg.config_from_dict(
        tmp_path, {"server": {"hostname": "mx.example.com"}, "srs": {"domain": "Fwd.Example.NET."}}
    )
    assert other.srs_domain == "fwd.example.net"


def test_pop3_section(tmp_path: Path) -> None:
    default = load_config(write(tmp_path, render_default_config("mail.example.com", None)))
    assert (default.pop3.max_connections, default.pop3.max_connections_per_ip) == (1000, 20)
    assert default.pop3.default_domain is None
    config = cfg.config_from_dict(
        tmp_path,
        {"pop3": {"default_domain": "Example.COM", "max_connections": 5,
                  "max_connections_per_ip": 2}},
    )
    assert config.pop3 == cfg.Pop3Config("example.com", 5, 2)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run `nmail init` first"):
        load_config(tmp_path)


def test_durations() -> None:
    config = cfg.config_from_dict(
        Path("/x"), {"queue": {"first_retry": "90s", "max_retry": "2h", "give_up_after": "3d"}}
    )
    assert (config.queue.first_retry, config.queue.max_retry, config.queue.give_up_after) == (
        90,
        7200,
        3 * 86400,
    )
    assert config.queue.keep_finished == 7 * 86400


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("smtp=127.0.0.1:2525", Listen("smtp", "127.0.0.1", 2525)),
        ("pop3s=[::1]:995", Listen("pop3s", "::1", 995)),
        ("HTTP=0.0.0.0:0", Listen("http", "0.0.0.0", 0)),
    ],
)
def test_parse_listen(spec: str, expected: Listen) -> None:
    assert parse_listen(spec) == expected


@pytest.mark.parametrize(
    "spec", ["smtp", "smtp=", "smtp=127.0.0.1", "ftp=1.2.3.4:21", "smtp=[::1", "smtp=1.2.3.4:x"]
)
def test_parse_listen_refuses(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_listen(spec)


def test_listen_off_removes_a_listener(tmp_path: Path) -> None:
    write(tmp_path, '[listen]\nsmtp = "127.0.0.1:2525"\npop3 = "127.0.0.1:2110"\n')
    config = load_config(tmp_path)
    chosen = listeners_from(config, [parse_listen("pop3=off"), parse_listen("http=OFF")])
    assert [listen.name for listen in chosen] == ["smtp"]


def test_listeners_defaults_by_privilege_and_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(
        write(tmp_path, '[listen]\nsmtp = "0.0.0.0"\npop3 = "off"\nhttp = "127.0.0.1:8081"\n')
    )
    monkeypatch.setattr(config_listen.os, "geteuid", lambda: 1000)
    chosen = listeners_from(config, [])
    assert chosen == [Listen("smtp", "0.0.0.0", 2525), Listen("http", "127.0.0.1", 8081)]
    monkeypatch.setattr(config_listen.os, "geteuid", lambda: 0)
    chosen = listeners_from(config, [Listen("pop3", "127.0.0.1", 1110)])
    assert chosen == [
        Listen("smtp", "0.0.0.0", 25),
        Listen("pop3", "127.0.0.1", 1110),
        Listen("http", "127.0.0.1", 8081),
    ]

