"""The outbound queue: durable spool, scheduler, SMTP client, DKIM signing.

Entry point: `nmail.queue.outbound.OutboundQueue`.
"""
