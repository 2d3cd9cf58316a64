"""protocols/pop3."""
