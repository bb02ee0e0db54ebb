"""Feature cache on disk.

Layout::

    CACHE/manifest.json            format, the feature spec and its fingerprint, shapes
    CACHE/clips/<clip_id>.safetensors   tensors ``video`` (S, C, L) and ``audio`` (S, 512);
                                        metadata: the clip record, frame count, duration, fingerprint,
                                        checksum of the tensors' bytes and of this metadata
    CACHE/index.json               every finished entry's metadata, rebuilt from the entries

An entry is written to a temporary file and renamed into place, so a killed run leaves either a whole entry
or none. Entries are self-describing; the index is only a summary that can always be rebuilt from them.
A checksum catches what the header cannot: bit rot, a bad copy, a sync tool changing feature data
(:meth:`FeatureCache.verify`); entries written before checksums existed verify as "no checksum".
Nothing is unpickled: safetensors and JSON only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_bytes
from safetensors.torch import save

from avemo.errors import AvemoError
from avemo.files import atomic_write, pid_alive
from avemo.spec import FeatureSpec, SpecError

FORMAT = "avemo-cache/1"
SUFFIX = ".safetensors"


CHECKSUM = "sha256"  # recorded with every checksum so another algorithm can follow; see RESULTS.md
OK, NO_CHECKSUM, DAMAGED = "ok", "no checksum", "damaged"


class CacheError(AvemoError):
    """A cache that cannot be used as asked; the message names the folder and what to do."""


class DamagedEntryError(CacheError):
    """An entry whose bytes are not those written (checksum mismatch, truncated); extract rebuilds it."""


@dataclass(frozen=True)
class EntryCheck:
    """The verdict on one entry: ``ok``, ``no checksum`` (written before checksums) or ``damaged`` (why)."""

    path: Path
    status: str
    reason: str = ""

    @property
    def clip_id(self) -> str:
        return self.path.name[: -len(SUFFIX)]


def checksum(tensors: dict[str, bytes | memoryview], meta: dict[str, str]) -> str:
    """SHA-256 of the tensors' bytes (in name order) and of the metadata other than the checksum itself.

    The metadata is covered too: a flipped byte in a label would train as silently as one in a feature.
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode() + b"\0")
        digest.update(tensors[name])
    rest = {k: v for k, v in meta.items() if k != "checksum"}
    digest.update(json.dumps(rest, sort_keys=True).encode())
    return f"{CHECKSUM}:{digest.hexdigest()}"


def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    """The bytes safetensors stores for ``tensor`` (contiguous, little-endian, on the CPU)."""
    return memoryview(tensor.detach().cpu().contiguous().view(torch.uint8).flatten().numpy())


def check_bytes(data: bytes) -> tuple[str, str]:
    """(status, reason) of an entry file's bytes, checked against the checksum its header records."""
    if len(data) < 8:
        return DAMAGED, f"truncated ({len(data)} bytes)"
    size = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(data[8:8 + size])
        meta = header.get("__metadata__") or {}
        spans = {name: header[name]["data_offsets"] for name in ("video", "audio")}
    except (ValueError, KeyError, TypeError, AttributeError):
        return DAMAGED, "unreadable header"
    body = memoryview(data)[8 + size:]
    end = max(stop for _, stop in spans.values())
    if len(body) < end:
        return DAMAGED, f"truncated ({len(data)} bytes, its header describes {8 + size + end})"
    recorded = meta.get("checksum")
    if recorded is None:
        return NO_CHECKSUM, "written before entries had checksums"
    if not recorded.startswith(f"{CHECKSUM}:"):
        return DAMAGED, f"checksum of an unknown kind ({recorded.split(':')[0]!r})"
    if checksum({name: body[a:b] for name, (a, b) in spans.items()}, meta) != recorded:
        return DAMAGED, "checksum mismatch: its features or metadata changed after it was written"
    return OK, ""


class FeatureCache:
    """A cache folder bound to one fingerprint."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest
        self.clips_dir = root / "clips"

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    @property
    def spec(self) -> FeatureSpec:
        """What the features were computed from (read from the manifest's spec, or the ``inputs`` of caches
        written before specs existed)."""
        return _manifest_spec(self.root / "manifest.json", self.manifest)

    @classmethod
    def open(cls, root: Path) -> FeatureCache:
        """Open an existing cache for reading."""
        path = root / "manifest.json"
        if not path.is_file():
            raise CacheError(f"{root}: not an avemo feature cache (no manifest.json); create one with avemo extract")
        try:
            manifest = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CacheError(f"{path}: unreadable manifest ({type(err).__name__}); delete the cache folder and "
                             "extract again") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise CacheError(f"{path}: cache format {found!r}, this avemo reads {FORMAT}; extract into a new folder")
        cache = cls(root, manifest)
        if cache.spec.fingerprint != cache.fingerprint:
            raise CacheError(f"{path}: the manifest's fingerprint does not match its spec (edited by hand?); "
                             "delete the cache folder and extract again")
        return cache

    @classmethod
    def create_or_open(cls, root: Path, spec: FeatureSpec, video_shape: tuple[int, ...],
                       audio_shape: tuple[int, ...]) -> FeatureCache:
        """Open ``root`` for writing features made as ``spec`` says; refuse a cache made otherwise."""
        if (root / "manifest.json").exists():
            cache = cls.open(root)
            stored = cache.spec
            if stored.fingerprint != spec.fingerprint:
                changed = stored.differences(spec)
                raise CacheError(
                    f"{root}: cache was made with other settings (fingerprint {cache.fingerprint}, this run "
                    f"{spec.fingerprint}; differs in {', '.join(changed[:6]) or 'its inputs'}); extract into a new "
                    "--cache folder, or delete this one to rebuild it")
            if stored.to_json() != spec.to_json():
                # Same features (same weights, maybe read from another place now): record where they are now,
                # so that predict finds them.
                cache.manifest = {**cache.manifest, "spec": spec.to_json()}
                cache.manifest.pop("inputs", None)
                atomic_write(root / "manifest.json", json.dumps(cache.manifest, indent=2).encode())
            cache.clips_dir.mkdir(exist_ok=True)
            cache._remove_stale_temporaries()
            return cache
        if root.is_dir() and any(root.iterdir()):
            raise CacheError(f"{root}: folder exists, is not empty and holds no manifest.json, so it is not an "
                             "avemo cache; choose a new or empty --cache folder")
        root.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": FORMAT,
            "fingerprint": spec.fingerprint,
            "spec": spec.to_json(),
            "video_shape": list(video_shape),
            "audio_shape": list(audio_shape),
            "dtype": spec.dtype,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write(root / "manifest.json", json.dumps(manifest, indent=2).encode())
        cache = cls(root, manifest)
        cache.clips_dir.mkdir(exist_ok=True)
        return cache

    def _remove_stale_temporaries(self) -> None:
        """Delete half-written entries of processes that no longer run (a killed extraction)."""
        for tmp in self.clips_dir.glob(".*.tmp"):
            pid = tmp.name.rsplit(".", 2)[-2]
            if not pid.isdigit() or not pid_alive(int(pid)):
                tmp.unlink(missing_ok=True)

    def entry_path(self, clip_id: str) -> Path:
        return self.clips_dir / f"{clip_id}{SUFFIX}"

    def read_meta(self, path: Path) -> dict[str, Any] | None:
        """An entry's metadata from its header alone, or ``None`` if it is broken or from another fingerprint."""
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                keys = set(handle.keys())
        except (SafetensorError, OSError, ValueError):
            return None
        if meta.get("fingerprint") != self.fingerprint or keys != {"video", "audio"}:
            return None
        try:
            entry = json.loads(meta["record"])
            entry.update(frame_count=int(meta["frame_count"]), duration=float(meta["duration"]),
                         produced_by=meta.get("produced_by", ""), crop=json.loads(meta.get("crop", "null")))
        except (KeyError, ValueError, TypeError, AttributeError):
            return None
        return entry

    def has(self, clip_id: str) -> bool:
        path = self.entry_path(clip_id)
        return path.is_file() and self.read_meta(path) is not None

    def write(self, clip_id: str, video: torch.Tensor, audio: torch.Tensor, record: dict[str, Any],
              frame_count: int, duration: float, produced_by: str = "", crop: dict[str, Any] | None = None) -> None:
        """Write one clip's features atomically, cast to the cache's dtype.

        ``produced_by`` names the runtime and decoder: they are not part of the fingerprint (their features
        agree to rounding, so a cache may be resumed with another), but each entry records its own. ``crop``
        is the region of the frames the video features saw (``{"box": [x, y, w, h], "source": ...}``).
        """
        if list(video.shape) != self.manifest["video_shape"] or list(audio.shape) != self.manifest["audio_shape"]:
            raise CacheError(f"{self.root}: entry {clip_id} has shapes {tuple(video.shape)}, {tuple(audio.shape)}; "
                             f"the cache holds {self.manifest['video_shape']}, {self.manifest['audio_shape']}")
        dtype = getattr(torch, self.manifest["dtype"])
        tensors = {"video": video.to(dtype).contiguous(), "audio": audio.to(dtype).contiguous()}
        if not all(torch.isfinite(t).all() for t in tensors.values()):  # after the cast: float16 overflows
            raise CacheError(f"{clip_id}: features are not finite in {self.manifest['dtype']}; not written "
                             "(extract with --dtype float32 if the weights produce values above 65504)")
        meta = {"fingerprint": self.fingerprint, "record": json.dumps(record), "frame_count": str(frame_count),
                "duration": f"{duration:.4f}", "produced_by": produced_by, "crop": json.dumps(crop)}
        meta["checksum"] = checksum({name: _tensor_bytes(t) for name, t in tensors.items()}, meta)
        atomic_write(self.entry_path(clip_id), save(tensors, metadata=meta))

    def read(self, clip_id: str, verify: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(video, audio) features of one clip; with ``verify``, checked against its checksum first.

        Raises :class:`DamagedEntryError` (with the reason) for a verified entry whose bytes changed; an entry
        without a checksum reads as before.
        """
        path = self.entry_path(clip_id)
        if not verify:
            with safe_open(str(path), framework="pt") as handle:
                return handle.get_tensor("video"), handle.get_tensor("audio")
        data = path.read_bytes()  # once: hashed, then parsed from memory
        status, reason = check_bytes(data)
        if status == DAMAGED:
            raise DamagedEntryError(f"{path}: {reason}")
        try:
            tensors = load_bytes(data)
            return tensors["video"], tensors["audio"]
        except (SafetensorError, KeyError, ValueError) as err:
            raise DamagedEntryError(f"{path}: unreadable ({' '.join(str(err).split())})") from None

    def diagnose(self, path: Path) -> str:
        """Why :meth:`scan` counts an entry as broken, in a few words."""
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                keys = set(handle.keys())
        except (SafetensorError, OSError, ValueError) as err:
            return f"unreadable ({' '.join(str(err).split())[:120]})"
        if meta.get("fingerprint") != self.fingerprint:
            return f"made with other settings (fingerprint {meta.get('fingerprint')}, the cache's {self.fingerprint})"
        if keys != {"video", "audio"}:
            return f"holds tensors {sorted(keys)}, not video and audio"
        return "malformed metadata"

    def health(self, broken: list[Path], verify: bool) -> dict[str, Any]:
        """What ``avemo inspect`` says about damage: broken entries (from :meth:`scan`) and, with ``verify``,
        every entry's checksum."""
        damaged = [{"entry": str(p), "reason": self.diagnose(p)} for p in broken]
        info: dict[str, Any] = {"checksums": "not verified (avemo inspect --verify reads every entry)"}
        if verify:
            known = {str(p) for p in broken}
            checks = self.verify()
            counts = {status: sum(c.status == status for c in checks) for status in (OK, NO_CHECKSUM, DAMAGED)}
            info["checksums"] = counts
            damaged += [{"entry": str(c.path), "reason": c.reason} for c in checks
                        if c.status == DAMAGED and str(c.path) not in known]
        info["damaged_entries"] = damaged
        return info

    def verify_entry(self, path: Path) -> EntryCheck:
        """Read one entry whole and check it against its checksum."""
        try:
            data = path.read_bytes()
        except OSError as err:
            return EntryCheck(path, DAMAGED, f"cannot be read ({err.strerror or err})")
        return EntryCheck(path, *check_bytes(data))

    def verify(self, clip_ids: list[str] | None = None) -> list[EntryCheck]:
        """Check the entries of ``clip_ids`` (default: every entry file) against their checksums.

        Reads every byte of them: see benchmarks/RESULTS.md for what that costs on a RAVDESS-size cache.
        """
        paths = ([self.entry_path(c) for c in clip_ids] if clip_ids is not None
                 else sorted(self.clips_dir.glob(f"*{SUFFIX}")))
        return [self.verify_entry(p) for p in paths]

    def scan(self) -> tuple[list[dict[str, Any]], list[Path]]:
        """(metadata of every valid entry sorted by clip id, entries that are broken or stale)."""
        good, bad = [], []
        for path in sorted(self.clips_dir.glob(f"*{SUFFIX}")):
            meta = self.read_meta(path)
            (good.append(meta) if meta is not None else bad.append(path))
        return sorted(good, key=lambda m: m["clip_id"]), bad

    def write_index(self) -> list[dict[str, Any]]:
        """Rebuild ``index.json`` from the entries on disk; return its entries."""
        entries, _ = self.scan()
        index = {"fingerprint": self.fingerprint, "entries": entries}
        atomic_write(self.root / "index.json", json.dumps(index, indent=1).encode())
        return entries

    def index(self) -> list[dict[str, Any]]:
        """Metadata of every valid entry, read from the entries themselves (read only).

        ``index.json`` is a summary written for other tools after each extraction; reading it as well would
        only repeat what the scan already knows.
        """
        return self.scan()[0]


def _manifest_spec(path: Path, manifest: dict[str, Any]) -> FeatureSpec:
    try:
        if "spec" in manifest:
            return FeatureSpec.from_json(manifest["spec"])
        return FeatureSpec.from_fingerprint_inputs(manifest["inputs"], manifest["dtype"])
    except (SpecError, KeyError) as err:
        raise CacheError(f"{path}: {err}; delete the cache folder and extract again") from None
