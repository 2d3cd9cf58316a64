"""The open-file limit of a server process, raised to the most it may have.

Every connection is a file descriptor. Linux starts processes with a soft
RLIMIT_NOFILE of 1,024 while the hard limit is usually far higher; a
server left at 1,024 runs out of descriptors (accept() fails with EMFILE)
long before it runs out of anything else, and then every door fails at
once. Raising the soft limit to the hard one needs no privilege, so every
nmail server process does it at start (the supervisor before it forks, and
each child again, in case it was started some other way).
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger("nmail.limits")


def raise_open_file_limit() -> int:
    """Set the soft RLIMIT_NOFILE to the hard limit; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:  # a container may forbid it
        log.warning("cannot raise the open file limit from %d to %d: %s", soft, hard, exc)
        return soft
    return hard
