"""The front doors on asyncio: each listener feeds a sans-IO protocol
(nmail.protocols) from its sockets and calls the core through a small,
typed backend contract, running blocking calls in a thread pool.

SMTP (roles smtp/25, submission/587, submissions/465):
    smtp.py          SmtpServer, SmtpServerSettings, start_smtp_server
    smtp_session.py  one connection: asyncio.Protocol <-> SmtpConnection
    smtp_answers.py  its decisions: events to the backend, answers back
    smtp_backend.py  SmtpBackend (the contract) and AuthOutcome
    smtp_auth.py     SMTP AUTH over the directory + throttle; IntakeBackend
POP3 (pop3/110, pop3s/995): pop3.py, pop3_connection.py, pop3_backend.py
Both: limits.py (connection limits), tls_upgrade.py (STARTTLS/STLS handshake),
    smtp_workers.py (the worker processes of `serve --workers`),
    heap.py (the garbage collector of a server process after start-up)
"""
