"""A message's bytes at end of DATA: `bytes` when small, a spool file when large.

Issue 9 item 2: a message past 1 MiB arrives into a nameless file in
`DIR/spool/` (servers/data_spool.py). It used to be read back whole at the
end of DATA, so a 50 MiB message still cost 50 MiB and more (header
parse, joins, the queue's copy) per connection. Now it stays in its file:
every consumer of the DATA bytes takes a `MessageSource`, either `bytes`
(every message under 1 MiB: the path measured by bench/smtp_inbound.py,
unchanged) or a `SpooledMessage`, and uses only what this module offers:

- `len(source)`: the size (size limit, quota, index, queue row);
- `message_head(source)`: the first HEAD_BYTES (256 KiB) for those that
  read header fields only (loops, authors, forwarding, vacation, signing
  domain); `bytes` come back as they are;
- `with_prefix(prefix, source)`: trace headers (or a DKIM-Signature) in
  front, without copying the body;
- `SpooledMessage.chunks()`: the bytes in pieces of COPY_CHUNK, for a
  streaming reader (the DKIM body hash, the index outline);
- `durable.write_file` takes a SpooledMessage among its chunks and copies
  it in the kernel (`copy_file_range`: no user-space copy; on XFS or btrfs
  a reflink that shares the blocks), falling back to pieces of COPY_CHUNK.

A SpooledMessage belongs to the SMTP session that made it; the session
closes it once the backend has answered (after every destination's copy
was written, so before the 250), or, when the session was torn down
meanwhile, the last reference does (the backend thread's).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from typing import IO

HEAD_BYTES = 256 * 1024  # what header readers get of a spooled message
COPY_CHUNK = 1 << 20  # a piece read or copied at once
# copy_file_range refused for this pair of files: copy through user space.
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP,
                             errno.EBADF})


class SpooledMessage:
    """`prefix`, then the first `size` bytes of an open (unnamed) spool file."""

    __slots__ = ("_file", "_head", "prefix", "size")

    def __init__(self, file: IO[bytes], size: int, prefix: bytes = b"") -> None:
        self._file = file
        self.size = size
        self.prefix = prefix
        self._head: bytes | None = None

    def __len__(self) -> int:
        return len(self.prefix) + self.size

    def __repr__(self) -> str:
        return f"SpooledMessage({len(self)} bytes)"

    def prefixed(self, prefix: bytes) -> SpooledMessage:
        """The same file with `prefix` in front (the file stays this one's to close)."""
        return SpooledMessage(self._file, self.size, prefix + self.prefix)

    def head(self) -> bytes:
        """The first HEAD_BYTES (all of a shorter message); read once."""
        if self._head is None:
            want = max(0, HEAD_BYTES - len(self.prefix))
            self._head = self.prefix + self._read(0, min(want, self.size))
        return self._head

    def chunks(self, start: int = 0, chunk: int = COPY_CHUNK) -> Iterator[bytes]:
        """The message's bytes from offset `start` (prefix included), in pieces."""
        if start < len(self.prefix):
            yield self.prefix[start:]
            start = len(self.prefix)
        offset = start - len(self.prefix)
        while offset < self.size:
            piece = self._read(offset, min(chunk, self.size - offset))
            offset += len(piece)
            yield piece

    def copy_to(self, fd: int) -> None:
        """Append the whole message at `fd`'s position (OSError as a write's)."""
        _write_all(fd, self.prefix)
        source = self._file.fileno()
        offset = 0
        kernel_copy = getattr(os, "copy_file_range", None)  # Linux only
        while kernel_copy is not None and offset < self.size:
            try:
                copied = kernel_copy(source, fd, self.size - offset, offset)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
                break
            if copied == 0:
                raise OSError(errno.EIO, "spool file shorter than its message")
            offset += copied
        while offset < self.size:  # no kernel copy: through memory, a piece at a time
            piece = self._read(offset, min(COPY_CHUNK, self.size - offset))
            _write_all(fd, piece)
            offset += len(piece)

    def close(self) -> None:
        """Let the spool file go (it has no name: its blocks are freed)."""
        self._head = None
        self._file.close()

    def _read(self, offset: int, count: int) -> bytes:
        data = os.pread(self._file.fileno(), count, offset)
        while len(data) < count:
            more = os.pread(self._file.fileno(), count - len(data), offset + len(data))
            if not more:
                raise OSError(errno.EIO, "spool file shorter than its message")
            data += more
        return data


MessageSource = bytes | SpooledMessage


def message_head(source: MessageSource) -> bytes:
    """What header readers look at: all of a small message, the head of a spooled one."""
    return source if isinstance(source, bytes) else source.head()


def with_prefix(prefix: bytes, source: MessageSource) -> MessageSource:
    """`prefix` followed by the message (a spooled one is not copied)."""
    return prefix + source if isinstance(source, bytes) else source.prefixed(prefix)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
