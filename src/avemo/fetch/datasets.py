"""What ``avemo fetch`` knows of each source: where its files are listed, which to take, their licence, and
how they land in the layout ``avemo extract`` reads.

RAVDESS: Zenodo record 1188976 (https://zenodo.org/records/1188976), listed by Zenodo's records API
(``GET {base}/api/records/1188976``, documented at https://developers.zenodo.org: each file has its name
(``key``; ``filename`` in older answers), ``size`` and ``checksum`` (``md5:<hex>``)), downloaded from
``{base}/records/1188976/files/<name>?download=1`` (the link Zenodo's web pages use; pooch builds the same).
``{base}`` is https://zenodo.org, or a mirror: ``--zenodo-url`` or ``AVEMO_ZENODO_URL``.

CREMA-D: the Git LFS repository https://github.com/CheyneyComputerScience/CREMA-D (branch ``master``), read
as :mod:`avemo.fetch.github` says.

Weights: Hara et al.'s checkpoints from the Google Drive folders the README of
https://github.com/kenshohara/3D-ResNets-PyTorch links (before its 2020 update: folder
``14KRBqT8ySfPtFSuLsFS2U4I-ihTDs0Y9``; since: folder ``1xbYbZ7rpyjftI_KCk6YuL-XrfQDz7Yd4``),
read as :mod:`avemo.fetch.gdrive` says; torchvision's ResNet-18 from ``{torchvision}/resnet18-f37072fd.pth``
(``https://download.pytorch.org/models``, or ``AVEMO_TORCHVISION_URL``), whose name carries the first hex
digits of its SHA-256.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from typing import Callable

from avemo.fetch.gdrive import download_url, folder_files
from avemo.fetch.github import GitHub, lfs_files
from avemo.fetch.http import FetchError, Remote, Retry, check_scheme, get_json

ZENODO = "https://zenodo.org"
ZENODO_ENV = "AVEMO_ZENODO_URL"
RAVDESS_RECORD = "1188976"
RAVDESS_LICENCE = ("RAVDESS (Livingstone & Russo, 2018, PLoS ONE 13(5): e0196391) is licensed CC BY-NC-SA 4.0: "
                   "non-commercial use, with attribution, shared alike (https://creativecommons.org/licenses/"
                   "by-nc-sa/4.0/)")


@dataclass(frozen=True)
class Part:
    """One file of a dataset and where it goes (relative to the dataset folder): an archive unpacked there, or
    a file stored there under its name."""

    remote: Remote
    into: str = "."
    unpack: bool = True


@dataclass
class Dataset:
    name: str
    licence: str
    parts: list[Part] = field(default_factory=list)
    source: str = ""  # where the list came from, in words
    workers: int = 1  # files fetched at once: many small files wait on round trips, a few large ones do not


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


def target(folder: Path, part: Part) -> Path:
    """Where ``part`` is downloaded: an archive into the fetch folder, a file into its place."""
    return folder / ".avemo-fetch" / part.remote.name if part.unpack else folder / part.into / part.remote.name


def is_done(folder: Path, part: Part) -> bool:
    """An archive is done once unpacked (its marker); a file once it is in its place with the size published
    (it is renamed there only after its checksum passed)."""
    if part.unpack:
        return unpacked_marker(folder, part).is_file()
    path = target(folder, part)
    return path.is_file() and (part.remote.size is None or path.stat().st_size == part.remote.size)


CREMAD_REPO, CREMAD_REF = "CheyneyComputerScience/CREMA-D", "master"
CREMAD_LICENCE = ("CREMA-D (Cao et al., 2014, IEEE Trans. Affective Computing 5(4): 377-390) is made available under "
                  "the Open Database License (ODbL 1.0, https://opendatacommons.org/licenses/odbl/1-0/); its contents "
                  "under the Database Contents License")


def cremad(hub: GitHub, folder: Path, wav: bool = True, mp3: bool = False, retry: Retry = Retry(),
           on_progress: Callable[[int, int], None] | None = None) -> Dataset:
    """CREMA-D's clips (``VideoFlash/*.flv``), their sound (``AudioWAV/``, and ``AudioMP3/`` on request) and
    ``VideoDemographics.csv``, each stored under its path in the repository (the layout extract reads)."""
    folders = {"VideoFlash"} | ({"AudioWAV"} if wav else set()) | ({"AudioMP3"} if mp3 else set())

    def wanted(path: str) -> bool:
        head, _, rest = path.partition("/")
        return path == "VideoDemographics.csv" or (head in folders and bool(rest) and "/" not in rest)

    remotes = lfs_files(hub, CREMAD_REPO, CREMAD_REF, wanted, folder / ".avemo-fetch" / "CREMA-D-lfs.json", retry,
                        on_progress=on_progress)
    if not any(r.name.startswith("VideoFlash/") for r in remotes):
        raise FetchError(f"{hub.api}/repos/{CREMAD_REPO}: lists no VideoFlash clips; is this GitHub (or a mirror of "
                         "it)?")
    return Dataset("CREMA-D", CREMAD_LICENCE, [Part(r, unpack=False) for r in sorted(remotes, key=lambda r: r.name)],
                   f"github.com/{CREMAD_REPO} at {hub.api}", workers=4)


TORCHVISION = "https://download.pytorch.org/models"
TORCHVISION_ENV = "AVEMO_TORCHVISION_URL"
RESNET18 = "resnet18-f37072fd.pth"
HARA_FOLDERS = {"hara2017": "14KRBqT8ySfPtFSuLsFS2U4I-ihTDs0Y9", "hara2020": "1xbYbZ7rpyjftI_KCk6YuL-XrfQDz7Yd4"}
VIDEO_FILES = {"hara2017": ("hara2017", "resnet-101-kinetics.pth"),
               "hara2020-k700": ("hara2020", "r3d101_K_200ep.pth"),
               "hara2020-km": ("hara2020", "r3d101_KM_200ep.pth")}
WEIGHTS_LICENCE = ("Hara et al.'s 3D ResNets (github.com/kenshohara/3D-ResNets-PyTorch, MIT licence; cite Hara, "
                   "Kataoka & Satoh, CVPR 2018) and torchvision's ResNet-18 (BSD-3-Clause; trained on ImageNet, "
                   "whose terms of access apply)")


def weights(video: str, audio: str, gdrive: str, torchvision: str | None = None, have: Path | None = None,
            retry: Retry = Retry()) -> Dataset:
    """The backbones' checkpoints asked for. Hara's files have no published checksum: their SHA-256 is printed
    (and recorded in every cache's feature spec). Google Drive is asked only for files not already in ``have``."""
    parts = []
    if video != "none":
        release, name = VIDEO_FILES[video]
        if have is not None and (have / name).is_file():
            parts.append(Part(Remote(name, ""), unpack=False))
        else:
            ids = folder_files(gdrive, HARA_FOLDERS[release], retry)
            if name not in ids:
                raise FetchError(f"{gdrive}/drive/folders/{HARA_FOLDERS[release]}: no {name} in Hara et al.'s folder "
                                 f"(it lists {', '.join(sorted(ids)) or 'nothing'}); download it in a browser")
            parts.append(Part(Remote(name, download_url(gdrive, ids[name], retry)), unpack=False))
    if audio != "none":
        named = torchvision or os.environ.get(TORCHVISION_ENV)
        base = (named or TORCHVISION).rstrip("/")
        check_scheme(base, explicit=named is not None)
        parts.append(Part(Remote(RESNET18, f"{base}/{RESNET18}", sha256=RESNET18.rsplit("-", 1)[1].split(".")[0]),
                          unpack=False))
    return Dataset("weights", WEIGHTS_LICENCE, parts, "Hara et al.'s Google Drive and download.pytorch.org")
