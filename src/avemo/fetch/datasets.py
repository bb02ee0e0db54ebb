"""What ``avemo fetch`` knows of each source: where its files are listed, which to take, their licence, and
how they unpack into the layout ``avemo extract`` reads.

RAVDESS: Zenodo record 1188976 (https://zenodo.org/records/1188976), listed by Zenodo's records API
(``GET {base}/api/records/1188976``, documented at https://developers.zenodo.org: each file has its name
(``key``; ``filename`` in older answers), ``size`` and ``checksum`` (``md5:<hex>``)), downloaded from
``{base}/records/1188976/files/<name>?download=1`` (the link Zenodo's web pages use; pooch builds the same).
``{base}`` is https://zenodo.org, or a mirror: ``--zenodo-url`` or ``AVEMO_ZENODO_URL``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from avemo.fetch.http import FetchError, Remote, Retry, check_scheme, get_json

ZENODO = "https://zenodo.org"
ZENODO_ENV = "AVEMO_ZENODO_URL"
RAVDESS_RECORD = "1188976"
RAVDESS_LICENCE = ("RAVDESS (Livingstone & Russo, 2018, PLoS ONE 13(5): e0196391) is licensed CC BY-NC-SA 4.0: "
                   "non-commercial use, with attribution, shared alike (https://creativecommons.org/licenses/"
                   "by-nc-sa/4.0/)")


@dataclass(frozen=True)
class Part:
    """One archive of a dataset and where it unpacks (relative to the dataset folder)."""

    remote: Remote
    into: str = "."


@dataclass
class Dataset:
    name: str
    licence: str
    parts: list[Part] = field(default_factory=list)
    source: str = ""  # where the list came from, in words


def zenodo_base(url: str | None) -> tuple[str, bool]:
    """The records API root, and whether the user named it (then plain http is allowed: a mirror, loopback)."""
    named = url or os.environ.get(ZENODO_ENV)
    base = (named or ZENODO).rstrip("/")
    check_scheme(base, explicit=named is not None)
    return base, named is not None


def zenodo_files(base: str, record: str, retry: Retry = Retry()) -> list[Remote]:
    """Every file of a Zenodo record, with its size and MD5."""
    answer = get_json(f"{base}/api/records/{record}", retry)
    entries = answer.get("files") if isinstance(answer, dict) else None
    if isinstance(entries, dict):  # InvenioRDM's full form: {"entries": {name: {...}}}
        entries = list(entries.get("entries", {}).values())
    if not isinstance(entries, list) or not entries:
        raise FetchError(f"{base}/api/records/{record}: lists no files; is this Zenodo (or a mirror of it)?")
    remotes = []
    for entry in entries:
        name = entry.get("key") or entry.get("filename")
        checksum = str(entry.get("checksum", ""))
        if not name or "/" in name or "\\" in name:
            raise FetchError(f"{base}/api/records/{record}: a file without a plain name ({name!r}); refused")
        md5 = checksum.split(":", 1)[1] if checksum.startswith("md5:") else (checksum if len(checksum) == 32 else None)
        if md5 is None:
            raise FetchError(f"{base}/api/records/{record}: {name} has no MD5 to check it against; refused")
        size = entry.get("size", entry.get("filesize"))
        remotes.append(Remote(name, f"{base}/records/{record}/files/{name}?download=1",
                              int(size) if size is not None else None, md5=md5))
    return remotes


def ravdess(base: str, speech: bool = True, song: bool = True, landmarks: bool = False,
            retry: Retry = Retry()) -> Dataset:
    """The RAVDESS archives asked for: the audio-visual speech and song zips per actor (each unpacks into
    ``Actor_XX/``, the layout extract reads), and the OpenFace landmarks (into ``FacialTracking/``)."""
    wanted = [("Speech", speech), ("Song", song)]
    patterns = [re.compile(rf"Video_{kind}_Actor_\d\d\.zip") for kind, on in wanted if on]
    parts = []
    for remote in zenodo_files(base, RAVDESS_RECORD, retry):
        if any(p.fullmatch(remote.name) for p in patterns):
            parts.append(Part(remote))
        elif landmarks and remote.name.startswith("FacialTracking_Actors") and remote.name.endswith(".zip"):
            parts.append(Part(remote, "FacialTracking"))
    if not parts:
        raise FetchError(f"{base}/api/records/{RAVDESS_RECORD}: none of the RAVDESS files asked for is listed; is "
                         "this Zenodo (or a mirror of it)?")
    return Dataset("RAVDESS", RAVDESS_LICENCE, sorted(parts, key=lambda p: p.remote.name),
                   f"Zenodo record {RAVDESS_RECORD} at {base}")


def unpacked_marker(folder: Path, part: Part) -> Path:
    """The file that says ``part`` is unpacked (its MD5 inside): a second fetch does nothing for it."""
    return folder / ".avemo-fetch" / f"{part.remote.name}.done"
