"""Returned mail: building our own notices and reading everyone's.

`dsn` builds the RFC 3464 notices the outbound queue sends; `analysis`
(`analyze`) reads any bounce into failed recipients, codes and a
category from `catalogue`, chosen by the rule table in `rules`;
`outbound_log` records the refusals the queue meets for `nmail bounce report`.
"""
