"""Delivery status notifications (RFC 3464) in Korean and English (`nmail.bounce.dsn`)."""
