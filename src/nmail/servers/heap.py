"""The garbage collector of a long-running server process, set once start-up is over.

CPython's cyclic collector runs after every 700 net container allocations
and, now and then, walks every object the process holds. A server process
holds tens of thousands of long-lived objects from start-up (modules, the
SQL metadata, configuration), and one SMTP transaction allocates a few
thousand short-lived ones, nearly all freed by reference counting alone. So
by default a collection runs several times per message, and a full one
re-scans all of start-up's objects again and again: measured, several
percent of a worker's CPU with nothing to show for it.

`settle()` moves everything alive after start-up out of the collector's
sight for good (gc.freeze) and lets the youngest generation grow to
YOUNG_THRESHOLD allocations before a collection. Reference cycles are
still collected, a little later; a cycle can at most hold the memory of
YOUNG_THRESHOLD small objects for a moment.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 100


def settle() -> None:
    """Call once a process has finished starting: freeze what start-up built."""
    freeze_startup()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


def freeze_startup() -> None:
    """Only move start-up's objects out of the collector's sight, keeping its
    thresholds: for the web process, whose pages (the email package, Jinja)
    make reference cycles that a rarely running collector would let pile up."""
    gc.collect()
    gc.freeze()
