"""mailstore: Maildir++ files and their SQL index (folders, messages).

The only code that touches mail files or writes those two tables. The public
API is `nmail.mailstore.store` (MailStore, NewMessage, StoreError, ...).
"""
