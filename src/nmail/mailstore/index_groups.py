"""Which of the index writer process's requests share a commit.

The writer process (index_service.py) reads whatever its workers sent since
its last commit and commits it in groups: the grouping is a pure decision
over the requests in the order they came, kept here in a room of its own
so the rules read in one place, apart from the sockets and the transactions
(and index_service.py under the 400-line room limit). The writer thread of
a single process groups its own queue alike (writer.py, IndexWriter._process).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, TypeVar

from nmail.mailstore.delivery_batch import PreparedMessage
from nmail.mailstore.op_run import group_key
from nmail.mailstore.operations import Operation

MAX_BATCH_ITEMS = 256  # messages a delivery commit takes at most

R = TypeVar("R", bound=tuple[Any, "list[PreparedMessage] | Operation"])


def commit_groups(requests: list[R]) -> list[list[R]]:
    """The requests, each (its sender, a delivery batch or an operation), in order
    and in groups: runs of deliveries of at most MAX_BATCH_ITEMS (a request stays
    whole) share a commit; so do runs of operations with group keys, none twice
    (op_run.group_key); any other operation is a group of its own."""
    groups: list[list[R]] = [[]]
    count = 0
    keys: set[Hashable] = set()
    for request in requests:
        batch = request[1]
        if not isinstance(batch, list):
            key = group_key(batch)
            current = groups[-1]
            if key is None or key in keys or not current or isinstance(current[0][1], list):
                if current:
                    groups.append([])
                keys = set()
            groups[-1].append(request)
            if key is None:
                groups.append([])
            else:
                keys.add(key)
            count = 0
            continue
        if groups[-1] and not isinstance(groups[-1][0][1], list):
            groups.append([])
            keys = set()
        if count + len(batch) > MAX_BATCH_ITEMS and groups[-1]:
            groups.append([])
            count = 0
        groups[-1].append(request)
        count += len(batch)
    return [group for group in groups if group]
