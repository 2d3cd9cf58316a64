"""What an SMTP connection offers and enforces; fixed for the life of a connection."""

from __future__ import annotations

from dataclasses import dataclass

MAX_COMMAND_LINE = 512  # octets including CRLF, RFC 5321 4.5.3.1.4
MAX_SASL_LINE = 12288  # RFC 4954 4


@dataclass(frozen=True, slots=True)
class SmtpOptions:
    """Limits and extensions of one listener (built by the server from SmtpSettings)."""

    hostname: str = "localhost"
    banner: str = "ESMTP nmail"
    max_message_size: int = 50 * 1024 * 1024
    max_recipients: int = 100
    max_bad_commands: int = 20
    # Refused RCPTs (5xx) without a delivery in between: from the soft limit
    # on the server slows its replies down, at the hard limit it says 421 and
    # closes (Postfix's smtpd_soft_error_limit / smtpd_hard_error_limit).
    rcpt_error_soft_limit: int = 10
    rcpt_error_hard_limit: int = 20
    rcpt_error_delay: float = 1.0  # seconds before each RCPT reply past the soft limit
    # STARTTLS is offered when a certificate is configured (and TLS not yet on).
    starttls_available: bool = False
    # AUTH PLAIN LOGIN is offered after TLS, or in plaintext where allowed.
    auth_available: bool = True
    # Submission ports: MAIL needs AUTH first (530 5.7.0).
    auth_required: bool = False
    # What RCPT TO:<postmaster> (no domain, RFC 5321 4.5.1) means here.
    postmaster_address: str | None = None
    # Bytes of a message held in memory as it arrives; past them whole lines
    # go to the connection's spill, when it has one (protocols.smtp.data).
    spill_at: int = 1 << 20

    def __post_init__(self) -> None:
        if self.max_message_size < 1 or self.max_recipients < 1 or self.max_bad_commands < 1:
            raise ValueError("SMTP limits must be positive")
        if not 1 <= self.rcpt_error_soft_limit <= self.rcpt_error_hard_limit:
            raise ValueError("RCPT error limits: 1 <= soft <= hard")
