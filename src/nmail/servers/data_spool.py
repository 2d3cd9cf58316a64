"""Where a large incoming message waits while it arrives: a file with no name.

protocols.smtp.data moves whole lines of a message past 1 MiB to a
BodySpill, so a connection holds at most about a megabyte of it in memory
whatever the client does (issue 9, item 2: clients that stop mid-DATA
used to hold up to the size limit each). `FileSpill` is that spill: an
unnamed temporary file in the data directory's `spool/` (O_TMPFILE where
the kernel has it), so nothing is left behind by a crash and nothing needs
cleaning up. It is written from the event loop: page-cache writes of whole
lines, never flushed to disk (the message is not acknowledged from it;
delivery makes its own durable copy). At the end of DATA the file becomes
a SpooledMessage (nmail/message_source.py) that delivery copies from; the
session closes it once the backend has answered.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import IO

from nmail.message_source import SpooledMessage


class FileSpill:
    """A BodySpill in an unnamed file under `directory`."""

    def __init__(self, directory: Path) -> None:
        # Closed by discard(), or with the object: it outlives any `with` here.
        self._file: IO[bytes] | None = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        self._size = 0

    def write(self, content: bytes) -> None:
        assert self._file is not None, "spill used after discard"
        self._file.write(content)
        self._size += len(content)

    def finish(self) -> SpooledMessage:
        """The message, left in the file (which is the SpooledMessage's to close now)."""
        assert self._file is not None, "spill used after discard"
        self._file.flush()  # into the page cache, where pread and copy_file_range see it
        file, self._file = self._file, None
        return SpooledMessage(file, self._size)

    def discard(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):  # a full disk: unflushed bytes just go
                file.close()


def spill_factory(directory: Path) -> FileSpillFactory:
    """What SmtpConnection calls for a new spill (the directory made now, private)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return FileSpillFactory(directory)


class FileSpillFactory:
    """Makes FileSpills in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __call__(self) -> FileSpill:
        return FileSpill(self.directory)
