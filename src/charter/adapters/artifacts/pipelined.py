"""Writing a blob while it is hashed, on two cores; copying one inside the kernel while it is.

A verified copy must read, hash and write every byte. Done in turn on one thread, a 1 GiB copy
costs the sum of the three; hashlib releases the GIL for large buffers, so hashing on a second
thread while this one writes costs about the slower of them. The disk is set writing every
``WRITEBACK_BYTES`` as the file grows (``start_writeback``), so it works beside the copy and the
final fsync does not wait for a gigabyte at once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import threading

from charter.domain.artifacts import Digester

WRITEBACK_BYTES = 16 * 1024 * 1024
QUEUE_CHUNKS = 4  # chunks in flight between the writer and the hasher: bounded memory


class PipelinedWriter:
    """Writes chunks to the file ``fd`` and feeds them to ``digester``; ``finish`` fsyncs it.

    The first chunk is hashed inline: a small blob never starts a thread. Sizes are counted (and
    the limit enforced, TooLarge) before a chunk is written, so an oversized stream stops at once.
    """

    def __init__(self, fd: int, digester: Digester) -> None:
        self._fd = fd
        self._digester = digester
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._thread: threading.Thread | None = None
        self._chunks = 0
        self._unsynced = 0
        self._offset = 0

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._digester.count(chunk)
        self._chunks += 1
        if self._chunks == 1:
            self._digester.absorb(chunk)
        else:
            if self._thread is None:
                self._thread = threading.Thread(target=self._hash, name="blob-hasher", daemon=True)
                self._thread.start()
            self._queue.put(chunk)
        # Straight to the file (a buffered writer costs a third of the throughput here); a short
        # write, which regular files make only when the disk is full or on a signal, continues.
        written = os.write(self._fd, chunk)
        while written < len(chunk):
            written += os.write(self._fd, memoryview(chunk)[written:])
        self._unsynced += len(chunk)
        self._offset += len(chunk)
        if self._unsynced >= WRITEBACK_BYTES:
            start_writeback(self._fd, self._offset - self._unsynced, self._unsynced)
            self._unsynced = 0

    def _hash(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._digester.absorb(chunk)

    def wait(self) -> None:
        """Every chunk written has been hashed (the digest is complete)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def finish(self) -> None:
        """Hashing done and the file durable."""
        self.wait()
        os.fsync(self._fd)

    def abandon(self) -> None:
        """Stop the hasher after a failure (the caller removes the file)."""
        if self._thread is not None:
            while True:  # make room for the sentinel even if the queue is full
                try:
                    self._queue.put_nowait(None)
                    break
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        self._queue.get_nowait()
            self._thread.join()
            self._thread = None


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing a range of ``fd`` to disk now, without waiting for it.

    ``POSIX_FADV_DONTNEED`` starts the writeback of the range's dirty pages (and drops those
    already clean). Without it a big copy lands in the page cache and the disk starts only at the
    final fsync, so the copy costs its hashing and then its writing, in turn, instead of the slower
    of the two."""
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


KERNEL_COPY_BYTES = WRITEBACK_BYTES  # a range is hashed, then set writing
HASH_READ_BYTES = 8 * 1024 * 1024


def kernel_copy_verified(src_fd: int, dst_fd: int, size: int, digester: Digester) -> bool:
    """Copy ``size`` bytes inside the kernel (``copy_file_range``: no trip through this process)
    while a second thread hashes the destination's bytes behind the copy, so what is verified is
    what arrived. False, with nothing written, when the kernel or filesystem cannot copy this way
    (the caller then copies through user space); the destination is fsynced on success."""
    if not hasattr(os, "copy_file_range"):
        return False
    ranges: queue.Queue[tuple[int, int] | None] = queue.Queue()
    failure: list[BaseException] = []

    def hash_behind() -> None:
        try:
            while (item := ranges.get()) is not None:
                offset, length = item
                end = offset + length
                while offset < end:
                    chunk = os.pread(dst_fd, min(HASH_READ_BYTES, end - offset), offset)
                    if not chunk:
                        raise OSError(f"the copy ended early at byte {offset}")
                    digester.update(chunk)
                    offset += len(chunk)
                start_writeback(dst_fd, end - length, length)
        except BaseException as error:  # noqa: BLE001 - handed to the copying thread
            failure.append(error)

    copied = 0
    hasher: threading.Thread | None = None
    try:
        while copied < size:
            try:
                n = os.copy_file_range(src_fd, dst_fd, min(KERNEL_COPY_BYTES, size - copied), copied, copied)
            except OSError as error:
                if copied == 0 and error.errno in (errno.EXDEV, errno.ENOSYS, errno.EINVAL,
                                                   errno.EOPNOTSUPP, errno.EBADF):
                    return False
                raise
            if n == 0:
                raise OSError(f"the source ended at byte {copied} of {size}")
            if hasher is None:
                hasher = threading.Thread(target=hash_behind, name="blob-verifier", daemon=True)
                hasher.start()
            ranges.put((copied, n))
            copied += n
            if failure:
                break
    finally:
        ranges.put(None)
        if hasher is not None:
            hasher.join()
    if failure:
        raise failure[0]
    os.fsync(dst_fd)
    return True
