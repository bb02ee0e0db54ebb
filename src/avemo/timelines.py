"""Timelines of many videos into folders: the run's backbones and fold models loaded once, a folder per video
filled as its windows finish, stopped runs resumed, and the videos shared among torchrun ranks.

A video the run cannot read (missing, no soundtrack for an audio-visual run, shorter than one window) gets its
one-line error and the others go on; its folder is left as it was (a folder changes with a video's first new
window). Errors of the set-up (the run, the device,
a full disk) stop the job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from avemo.distributed import World, join, leave
from avemo.errors import SetupError
from avemo.pipeline.stream import StreamError
from avemo.recognizer import Recognizer, TimelineError
from avemo.reports.results import Timeline, Window
from avemo.reports.timeline_folder import Source, TimelineFolder, TimelineFolderError, default_folder, folder_names


# What one video can go wrong with; any other error (the run, the device, the disk) stops the job.
VIDEO_ERRORS = (TimelineError, StreamError, TimelineFolderError)


@dataclass
class TimelineJob:
    """What ``avemo timeline`` is asked to do."""

    videos: list[Path]
    run: Path
    # One video: the folder for its files (default: beside it, its name + "-timeline"). Several: the folder
    # that gets a folder per video (default: each beside its video).
    out: Path | None = None
    resume: bool = False  # go on from the rows a stopped run left in a video's folder
    window: float | None = None  # seconds; None: the run's clip length
    hop: float | None = None  # seconds; None: one snippet (window / 6)
    batch_size: int = 4
    device: str = "auto"

    def folders(self) -> list[Path]:
        if self.out is None:
            return [default_folder(v) for v in self.videos]
        if len(self.videos) == 1:
            return [self.out]
        return [self.out / name for name in folder_names(self.videos)]


@dataclass
class VideoTimeline:
    """One video's outcome: its folder and timeline, or the error that kept it from having one."""

    video: Path
    folder: Path
    seconds: float = 0.0  # the video's duration as the file declares it (0 when unknown)
    timeline: Timeline | None = None  # on the rank that made it
    error: str = ""
    kept: int = 0  # windows a stopped run had finished, resumed rather than computed again
    windows: int = 0
    not_decoded: int = 0
    shares: dict[str, float] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error

    def to_dict(self) -> dict[str, Any]:
        return {"video": str(self.video), "folder": str(self.folder), "seconds": round(self.seconds, 3),
                "windows": self.windows, "kept": self.kept, "not_decoded": self.not_decoded,
                "shares": {c: round(v, 4) for c, v in self.shares.items()}, "error": self.error or None}


@dataclass
class TimelinesSummary:
    """All videos' outcomes (every rank's), and the time they took."""

    videos: list[VideoTimeline]
    seconds: float = 0.0  # wall time (the slowest rank's under torchrun)
    computed: float = 0.0  # seconds of video whose windows were computed now (not resumed)
    ranks: int = 1
    faces: bool = False  # whether the run's crop looks for faces

    @property
    def failed(self) -> list[VideoTimeline]:
        return [v for v in self.videos if not v.ok]

    @property
    def rate(self) -> float:
        """Seconds of video per second of wall time."""
        return self.computed / self.seconds if self.seconds else 0.0


def run_timelines(job: TimelineJob, on_start: Callable[[float], None] | None = None,
                  on_progress: Callable[[float, VideoTimeline], None] | None = None,
                  on_video: Callable[[VideoTimeline], None] | None = None) -> TimelinesSummary:
    """The timeline of every video of ``job`` into its folder; see the module's description.

    ``on_start`` hears the seconds of video to go through (this rank's share), ``on_progress`` the seconds
    done so far (with the video at hand) as windows finish, ``on_video`` each video's outcome. Under torchrun
    every rank takes its own fixed share of the videos on its own device; the callbacks run on rank 0, for its
    share, and the summary returned counts every rank's videos.
    """
    from avemo.engines.runtime import RuntimeRequest
    from avemo.fusion.run import Run

    started = time.perf_counter()
    if not job.videos:
        raise SetupError("give at least one VIDEO")
    seen: dict[Path, Path] = {}
    for video in job.videos:
        earlier = seen.setdefault(video.resolve(), video)
        if earlier is not video:
            raise SetupError(f"{earlier} and {video}: the same video twice; give it once")
    folders = job.folders()
    where = [f.resolve() for f in folders]
    for i, folder in enumerate(where):
        if where.count(folder) > 1:
            j = where.index(folder, i + 1)
            same = job.videos[i].resolve() == job.videos[j].resolve()
            raise SetupError(f"{job.videos[i]} and {job.videos[j]}: " + (
                "the same video twice; give it once" if same else
                f"both would write {folders[i]}; give --out DIR (a folder per video inside it)"))
    run = Run(job.run)
    device = RuntimeRequest(device=job.device).resolve().device
    world = join(device)
    try:
        rec = run.recognizer(device=str(world.device(device)))
        if not world.main:
            on_start = on_progress = on_video = None
        mine = world.shard(list(zip(job.videos, folders)))
        summary = _run(job, rec, mine, on_start, on_progress, on_video)
        summary.seconds = time.perf_counter() - started
        if world.size > 1:
            summary = _merge(world, summary, folders)
    finally:
        leave(world)
    return summary


def timeline_into(rec: Recognizer, video: Path, folder: Path, *, resume: bool = False, window: float | None = None,
                  hop: float | None = None, batch_size: int = 4,
                  on_progress: Callable[[float], None] | None = None) -> VideoTimeline:
    """One video's timeline into ``folder`` with a recognizer made once by the caller (a server's), as
    ``avemo timeline`` makes it: live rows, resumable, the video's error in the result rather than raised."""
    from avemo.pipeline.decode import media_seconds

    job = TimelineJob([video], rec.run.path, out=folder, resume=resume, window=window, hop=hop, batch_size=batch_size)
    result = VideoTimeline(video, folder, seconds=(media_seconds(video) or 0.0) if video.is_file() else 0.0)
    summary = TimelinesSummary([result], faces=rec.spec.video.crop_mode.uses_detector)
    _one(job, rec, result, [fold.best for fold in rec.run.trained_folds],
         on_progress if on_progress is not None else (lambda seconds: None), summary)
    return result


def _run(job: TimelineJob, rec: Recognizer, mine: list[tuple[Path, Path]], on_start: Callable | None,
         on_progress: Callable | None, on_video: Callable | None) -> TimelinesSummary:
    from avemo.pipeline.decode import media_seconds

    results = [VideoTimeline(v, f, seconds=(media_seconds(v) or 0.0) if v.is_file() else 0.0) for v, f in mine]
    if on_start is not None:
        on_start(sum(r.seconds for r in results))
    summary = TimelinesSummary(results, faces=rec.spec.video.crop_mode.uses_detector)
    checkpoints = [fold.best for fold in rec.run.trained_folds]
    before = 0.0  # seconds of the videos already done
    for result in results:
        _one(job, rec, result, checkpoints, lambda t, r=result: on_progress and on_progress(before + t, r), summary)
        before += result.seconds
        if on_progress is not None:
            on_progress(before, result)
        if on_video is not None:
            on_video(result)
    return summary


def _one(job: TimelineJob, rec: Recognizer, result: VideoTimeline, checkpoints: list[Path],
         progress: Callable[[float], Any], summary: TimelinesSummary) -> None:
    """One video into its folder; a video the run cannot read ends up in ``result.error``."""
    folder = TimelineFolder(result.folder)
    try:
        plan = rec.plan(result.video, window=job.window, hop=job.hop)  # refused videos leave the folder alone
        rec.load()  # once; a run that cannot be used stops the job before any folder is touched
        source = Source.of(result.video, rec.run.path, checkpoints)
        kept, finished = folder.resume(plan, source) if job.resume else ([], False)
    except VIDEO_ERRORS as error:
        result.error = str(error)
        return
    result.kept = len(kept)
    if finished:  # nothing left to compute: the files are written again (the plot too)
        plan.windows = kept
        timeline = plan
    else:
        if kept:
            progress(kept[-1].end)

        def finished_window(w: Window) -> None:
            if not folder.live:  # the folder changes with the first new window, not before
                folder.start(plan, source, kept)
            folder.add(w)
            progress(min(w.end, result.seconds) if result.seconds else w.end)

        try:
            timeline = rec.timeline(result.video, window=job.window, hop=job.hop, batch_size=job.batch_size,
                                    on_window=finished_window, done=kept)
        except VIDEO_ERRORS as error:  # unreadable after all (no frames decoded, shorter than one window)
            result.error = str(error)
            return
        finally:
            folder.close()
    result.timeline = timeline
    result.files = folder.finish(timeline, source)
    result.windows = len(timeline.windows)
    result.not_decoded = sum(1 for w in timeline.windows if w.error)
    result.shares = timeline.shares()
    if result.windows:
        summary.computed += result.seconds * (result.windows - result.kept) / result.windows


def _merge(world: World, summary: TimelinesSummary, folders: list[Path]) -> TimelinesSummary:
    """Every rank's videos, in the order given (told apart by their folders, which are distinct)."""
    if len(folders) > 1:  # the windows stay in the folders; only the outcome travels (one video's timeline is shown)
        for v in summary.videos:
            v.timeline = None
    parts = world.gather(summary)
    videos = sorted((v for part in parts for v in part.videos), key=lambda v: folders.index(v.folder))
    return TimelinesSummary(videos, max(p.seconds for p in parts), sum(p.computed for p in parts), len(parts),
                            summary.faces)
