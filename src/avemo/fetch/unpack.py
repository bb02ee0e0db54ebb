"""Unpacking downloaded archives without trusting them: nothing is written outside the target folder (no
absolute paths, no ``..``, no links), and no more than a set number of bytes, counted as they are written (a
zip's declared sizes can lie). Each file is written whole or not at all, so a stopped unpack is done again."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from zlib import error as zlib_error
from pathlib import Path, PurePosixPath

from avemo.fetch.http import FetchError
from avemo.files import FULL, DiskFullError

CHUNK = 1 << 20


def _member_path(name: str) -> PurePosixPath | None:
    """The member's relative path, or None when it would leave the folder."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or not path.parts or ".." in path.parts or ":" in path.parts[0]:
        return None
    return path


def safe_unzip(archive: Path, target: Path, limit: int) -> list[Path]:
    """Unpack ``archive`` into ``target``; raise :class:`FetchError` (naming the archive and the member) for an
    entry that would land outside ``target``, a link, or more than ``limit`` bytes in all. Files already there
    with the member's size are kept. Returns the files unpacked."""
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    written, files = 0, []
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise FetchError(f"{archive}: not a readable zip ({error}); delete it and run the same command again") from None
    with zf:
        members = zf.infolist()
        for info in members:  # refuse the whole archive before writing anything
            relative = _member_path(info.filename)
            mode = info.external_attr >> 16
            if relative is None:
                raise FetchError(f"{archive}: the entry {info.filename!r} would be written outside {target}; refused "
                                 "(nothing unpacked)")
            if stat.S_ISLNK(mode):
                raise FetchError(f"{archive}: the entry {info.filename!r} is a link; refused (nothing unpacked)")
            if not (root / relative).resolve().is_relative_to(root):  # a folder already there that links out
                raise FetchError(f"{archive}: the entry {info.filename!r} would be written outside {target} through a "
                                 "link there; refused (nothing unpacked)")
        if sum(i.file_size for i in members) > limit:
            raise FetchError(f"{archive}: would unpack to {sum(i.file_size for i in members) / 1e9:.1f} GB, more than "
                             f"the {limit / 1e9:.1f} GB allowed; refused (nothing unpacked)")
        for info in members:
            path = root / _member_path(info.filename)
            try:
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:  # e.g. a file and a folder of one name
                raise FetchError(f"{archive}: cannot make the folder for {info.filename!r} in {target} ({error}); "
                                 "refused") from None
            if path.is_file() and path.stat().st_size == info.file_size:
                files.append(path)
                continue
            tmp = path.with_name(f".{path.name}.unzip")
            try:
                with zf.open(info) as source, tmp.open("wb") as out:
                    while block := source.read(CHUNK):
                        written += len(block)
                        if written > limit:  # more than the sizes it declared
                            raise FetchError(f"{archive}: unpacks to more than the {limit / 1e9:.1f} GB allowed (at "
                                             f"{info.filename!r}); refused")
                        out.write(block)
                os.replace(tmp, path)
            except (zipfile.BadZipFile, EOFError, zlib_error) as error:
                tmp.unlink(missing_ok=True)
                raise FetchError(f"{archive}: damaged at {info.filename!r} ({error}); delete it and run the same "
                                 "command again") from None
            except (RuntimeError, NotImplementedError) as error:  # encrypted, or a compression zipfile lacks
                tmp.unlink(missing_ok=True)
                raise FetchError(f"{archive}: cannot unpack {info.filename!r} ({error}); refused") from None
            except OSError as error:
                tmp.unlink(missing_ok=True)
                if error.errno in FULL:
                    raise DiskFullError(error.errno, f"{FULL[error.errno]} while unpacking {archive.name}; free "
                                        "space and run the same command again", str(path)) from None
                raise FetchError(f"{archive}: cannot write {info.filename!r} into {target} ({error}); refused") from None
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            files.append(path)
    return files


def free_bytes(folder: Path) -> int:
    """Free bytes where ``folder`` is (or would be made)."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free
