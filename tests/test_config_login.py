"""`[login]`: the password gate's sizes from nmail.toml (config_login.py), their bad
values, and a server whose gate is the one configured."""

from __future__ import annotations

import poplib
from pathlib import Path

import pytest

from nmail.config import ConfigError, load_config
from nmail.config_login import MAX_PLACES, LoginSettings
from nmail.config_template import render_default_config
from nmail.directory import login_gate
from nmail.directory.login_gate import PasswordGate, usable_cpus
from server_rig import PASSWORD, RunningServer, make_data_dir


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "nmail.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_defaults_from_the_template_and_from_nothing(tmp_path: Path) -> None:
    template = load_config(write(tmp_path, render_default_config("mail.example.com", None)))
    assert template.login == LoginSettings(None, None, 10)
    assert load_config(write(tmp_path, "")).login == LoginSettings()
    gate = PasswordGate(None, None)
    assert gate.checks == min(usable_cpus(), 8) and gate.waiting == min(4 * gate.checks,
                                                                        16 - gate.checks)
    assert MAX_PLACES == login_gate.MAX_PLACES  # config imports nothing from directory/


def test_values_given(tmp_path: Path) -> None:
    text = '[login]\nconcurrent_checks = 3\nwaiting_checks = 12\nwait_seconds = "1m"\n'
    assert load_config(write(tmp_path, text)).login == LoginSettings(3, 12, 60)
    text = '[login]\nconcurrent_checks = "2"\nwaiting_checks = 0\nwait_seconds = 5\n'
    assert load_config(write(tmp_path, text)).login == LoginSettings(2, 0, 5)


def test_a_size_left_out_fits_in_what_the_other_leaves() -> None:
    assert PasswordGate(None, 15).checks == 1
    assert PasswordGate(None, 0).checks == min(usable_cpus(), 8)
    assert PasswordGate(16, None).waiting == 0
    assert PasswordGate(2, None).waiting == 8
    assert PasswordGate(2, None, max_wait=3).max_wait == 3


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("login = 3\n", "[login] must be a table"),
        ("[login]\nconcurrent_checks = 0\n", "[login] concurrent_checks: expected 1 to 16, got 0"),
        ("[login]\nconcurrent_checks = -2\n", "[login] concurrent_checks: expected 1 to 16"),
        ("[login]\nconcurrent_checks = 17\n", "[login] concurrent_checks: expected 1 to 16"),
        ('[login]\nconcurrent_checks = "many"\n', "[login] concurrent_checks: expected a whole"),
        ("[login]\nconcurrent_checks = true\n", "[login] concurrent_checks: expected a whole"),
        ("[login]\nconcurrent_checks = 2.5\n", "[login] concurrent_checks: expected a whole"),
        ("[login]\nwaiting_checks = -1\n", "[login] waiting_checks: expected 0 to 15, got -1"),
        ("[login]\nwaiting_checks = 99999999999999999999\n", "[login] waiting_checks: expected"),
        ("[login]\nwaiting_checks = [4]\n", "[login] waiting_checks: expected a whole"),
        ("[login]\nconcurrent_checks = 8\nwaiting_checks = 9\n",
         "concurrent_checks + waiting_checks: at most 16 together"),
        ("[login]\nwait_seconds = 0\n", "[login] wait_seconds: expected 1 to 60 seconds, got 0"),
        ('[login]\nwait_seconds = "2m"\n', "[login] wait_seconds: expected 1 to 60 seconds"),
        ('[login]\nwait_seconds = "soon"\n', "[login] wait_seconds: expected a duration"),
        ('[login]\nwait_seconds = "-5s"\n', "[login] wait_seconds: a duration cannot be"),
        ("[login]\nconcurent_checks = 2\n", "[login] concurent_checks: unknown key"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert says in str(err.value)


def test_the_server_gate_is_the_configured_one(tmp_path: Path) -> None:
    """One check at once, none waiting: while the one place is taken a POP3 login is
    answered busy at once (the default line would hold it up to 10 s), then logs in."""
    data = make_data_dir(tmp_path)
    toml = data / "nmail.toml"
    text = toml.read_text(encoding="utf-8")
    assert text.count('\n[login]\n') == 1 and text.count('wait_seconds = "10s"') == 1
    toml.write_text(text.replace('\n[login]\n', '\n[login]\nconcurrent_checks = 1\n'
                                 'waiting_checks = 0\n').replace('wait_seconds = "10s"',
                                                                'wait_seconds = "7s"'),
                    encoding="utf-8")
    with RunningServer(data, listeners=("pop3",)) as server:
        gate = server.runtime.login_gate
        assert (gate.checks, gate.waiting, gate.max_wait) == (1, 0, 7)
        server.add_user("bob@example.com")
        assert gate.enter()  # the one place, held by "another login"
        try:
            pop = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
            try:
                pop.user("bob@example.com")
                with pytest.raises(poplib.error_proto) as busy:
                    pop.pass_(PASSWORD)
                assert busy.value.args[0].startswith(b"-ERR [SYS/TEMP]")
            finally:
                pop.close()
        finally:
            gate.leave()
        pop = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
        try:
            pop.user("bob@example.com")
            assert pop.pass_(PASSWORD).startswith(b"+OK")
            pop.quit()
        finally:
            pop.close()
