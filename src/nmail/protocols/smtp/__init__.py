"""protocols/smtp."""
