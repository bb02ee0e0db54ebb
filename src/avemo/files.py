"""Writing files so that no reader ever sees half of one: every stage (cache, engines, export, fusion) uses this."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path

from avemo.errors import AvemoError


# Errors that mean "this filesystem takes no more": retrying the next file would only fail again.
FULL = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "the file system is read-only"}


class DiskFullError(AvemoError, OSError):
    """No space, no quota left or a read-only filesystem while writing ``filename``; nothing half-written stays.

    ``strerror`` says what happened and what to do; callers that know more (how many entries are whole, which
    command resumes) raise their own with a better hint.
    """

    @property
    def reason(self) -> str:
        return FULL.get(self.errno, "cannot write")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one, never a part.

    Whatever stops it (a full disk, Ctrl-C) removes the temporary file; a full disk, an exhausted quota or a
    read-only filesystem raise :class:`DiskFullError`.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):  # on a read-only filesystem there may be nothing to remove
            tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in FULL:
            raise DiskFullError(err.errno, f"{FULL[err.errno]} while writing it; free space and run the same "
                                "command again", str(path)) from None
        raise


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a temporary or lock of a dead one may be taken over)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LockedError(AvemoError, RuntimeError):
    """Another live process holds a folder's lock; the message names the folder and the process."""


class FolderLock:
    """An exclusive lock on a folder for one process at a time (``with FolderLock(path, "training"):``).

    The kernel's ``flock`` decides who holds it, so a lock whose holder died (kill -9, power loss) is free
    again and simply taken over (a recorded PID could have been reused by then); the file also records the
    holder's PID and host, so a refusal can name them. Where the filesystem has no ``flock``, the recorded PID
    decides, as for the cache's temporaries (:func:`pid_alive`).
    """

    def __init__(self, path: Path, doing: str) -> None:
        self.path, self.doing = path, doing
        self._fd: int | None = None

    def _holder(self, fd: int) -> str:
        try:
            text = os.pread(fd, 200, 0).decode(errors="replace").split()
        except OSError:
            text = []
        return self._holder_text(text)

    def acquire(self) -> None:
        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder(fd)
                os.close(fd)
                raise self._refusal(holder) from None
            except OSError:  # a filesystem without flock (some network mounts): trust the recorded PID instead
                self._pid_only(fd)
                return
            try:  # a holder that released between our open and flock unlinked the file we locked: retry
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
                self._fd = fd
                return
            os.close(fd)
        raise LockedError(f"{self.path}: the lock keeps changing hands; try again")

    def _refusal(self, holder: str) -> LockedError:
        return LockedError(f"{self.path.parent}: {holder} is {self.doing} it now; wait for it to finish or stop it "
                           f"(its lock is {self.path.name})")

    def _pid_only(self, fd: int) -> None:
        """Best effort where flock is missing: refuse while the recorded process runs here, else take over."""
        text = os.pread(fd, 200, 0).decode(errors="replace").split()
        pid = int(text[0]) if text and text[0].isdigit() else None
        elsewhere = len(text) > 1 and text[1] != socket.gethostname()  # its liveness cannot be checked from here
        if pid is not None and pid != os.getpid() and (elsewhere or pid_alive(pid)):
            os.close(fd)
            gone = f"; if it is gone, delete {self.path}" if elsewhere else ""
            raise LockedError(str(self._refusal(self._holder_text(text))) + gone)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        self._fd = fd

    @staticmethod
    def _holder_text(text: list[str]) -> str:
        pid = text[0] if text else "unknown"
        return f"process {pid}" + (f" on {text[1]}" if len(text) > 1 and text[1] != socket.gethostname() else "")

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # while still holding it, so no one locks a file about to vanish
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
