"""The nmail.toml that `nmail init` writes, every knob explained."""

from __future__ import annotations


def render_default_config(hostname: str, database_url: str | None) -> str:
    """The nmail.toml that `nmail init` writes, with every knob explained."""
    db_line = (
        f'url = "{database_url}"'
        if database_url
        else '# url = "sqlite:///<data>/index.sqlite3"   (the default)\n'
        '# url = "mysql+pymysql://user:pass@127.0.0.1/nmail?charset=utf8mb4"\n'
        '# url = "postgresql+psycopg://user:pass@127.0.0.1/nmail"'
    )
    return f"""# nmail configuration. Domains, users, aliases and relay networks live in
# the database and are managed with `nmail domain|user|alias|relay ...`.

[server]
hostname = "{hostname}"
# At stop, transactions in progress get this long; then 421 and close.
stop_timeout = "30s"

[database]
{db_line}

[listen]
# NAME = "HOST[:PORT]"; without a port the standard one is used when run as
# root, otherwise 2525/2587/2465/2110/2995/2143/2993/8080. "off" disables.
smtp = "0.0.0.0"
submission = "0.0.0.0"
submissions = "0.0.0.0"
pop3 = "0.0.0.0"
pop3s = "0.0.0.0"
http = "0.0.0.0"

[smtp]
max_message_size = 52428800   # bytes
max_recipients = 100
max_hops = 30                 # Received headers before "Mail loop detected"
max_connections = 1000        # open SMTP connections per listener (all workers)
max_connections_per_ip = 50   # from one address (IPv6: per /64); loopback unlimited
plaintext_auth_networks = ["127.0.0.0/8", "::1/128"]
# Refused recipients (5xx) in a session without a delivered message (an
# address-guessing client): past the soft limit each RCPT reply waits
# rcpt_error_delay seconds; at the hard limit the session ends with 421.
rcpt_error_soft_limit = 10
rcpt_error_hard_limit = 20
rcpt_error_delay = 1
idle_timeout = "5m"           # reply to next whole command; a trickle does not reset it
min_data_rate = 500           # bytes/s a slow client must keep up (commands and messages)
max_session_time = "1h"       # then 421 and close, whatever the session is doing
# workers = 2        # processes serving port 25 (default: one per CPU, at most 4)

[tls]
# Self-signed at init; point these at real files (e.g. from certbot) and
# send SIGHUP to reload without dropping connections.
cert = "tls/cert.pem"
key = "tls/key.pem"

[queue]
first_retry = "5m"
max_retry = "4h"
give_up_after = "5d"
delay_warning_after = "4h"
# Delivered and failed messages stay listed (`queue show`) this long.
keep_finished = "7d"

[pop3]
# default_domain = "example.com"   # lets users log in with the bare user id
max_connections = 1000        # open POP3 sessions per listener
max_connections_per_ip = 20   # from one address (IPv6: per /64); loopback unlimited

[http]
# The web app runs in its own process; these keep one client from taking it.
max_connections = 1000        # open HTTP connections
max_connections_per_ip = 100  # from one address (IPv6: per /64); loopback unlimited
header_timeout = "20s"        # to send a request's headers, trickling does not extend it
keepalive_timeout = "5s"      # an idle connection is kept this long after a response

[login]
# Password checks (Argon2, 64 MiB each while it runs) per process: this many
# at once, this many more wait their turn, the rest are answered "busy"
# (SMTP 454, POP3 -ERR [SYS/TEMP], web 503). Together at most 16.
# concurrent_checks = 2        # default: one per CPU, at most 8
# waiting_checks = 8           # default: four times concurrent_checks
wait_seconds = "10s"          # a check waiting longer is answered busy (1s to 60s)

[web]
# The webmail logs users in by the host they open: mail.<domain> and
# webmail.<domain> mean <domain>; other names can be mapped here.
# hosts = {{ "post.example.net" = "example.com" }}
# Reverse proxies (nginx, a load balancer) whose X-Forwarded-For/-Proto are
# believed; nobody else's are.
# trusted_proxies = ["127.0.0.1/32"]
session_idle = "2h"           # a webmail session unused this long ends
session_max = "7d"            # and none lives longer than this
time_zone = "Asia/Seoul"      # dates in the webmail

[dkim]
selector = "nmail"

[srs]
# Forwarded mail (aliases/catch-all to other domains) leaves with an SRS
# envelope sender in this domain; it must resolve to this server.
# domain = "{hostname}"

[dns]
# nameservers = ["127.0.0.1"]

# [relay]          # smarthost for networks where port 25 is blocked
# host = "smtp.example.net"
# port = 587
# user = "me"
# password = "secret"
# tls = "starttls"  # starttls | implicit | none
# verify_certificate = true  # with a password: AUTH only after the certificate
#                            # verifies; false sends it to any certificate

[transport]
# "example.com" = "smtp:[10.0.0.5]:2525"
"""
