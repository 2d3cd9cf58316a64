"""The one way in: checks at MAIL/RCPT time and acceptance at end of data.

Every front door (SMTP, submission, webmail send, bounces) talks to this
class. It is synchronous; asyncio servers call it through an executor.
"""
