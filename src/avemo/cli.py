"""The ``avemo`` command line. It parses, validates and shows; the work lives in the modules below it.

Results (tables, predictions, summaries) go to stdout; progress, notes, warnings and errors to stderr.
Progress is a bar on a terminal and a plain line every ~10 % (and per fold) in a log; ``--quiet`` keeps
only results and errors. avemo's own errors print as one line (exit 2); anything else that escapes a command
prints one line and a pointer to ``AVEMO_DEBUG=1`` for its traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from avemo import __version__
from avemo.choices import (BackendName, Codec, Crop, Dataset, Decoder, DeviceName, Dtype, ExportPrecision, Faces, Loss,
                           Modality, Precision, Protocol, VideoNormalization)
from avemo.distributed import launched_rank
from avemo.errors import AvemoError
from avemo.fusion.config import TrainConfig

if TYPE_CHECKING:  # the CLI imports torch-heavy modules only inside the command that needs them
    from avemo.extraction import ExtractConfig, ExtractSummary
    from avemo.pipeline.clips import Skipped

app = typer.Typer(help="avemo: audio-visual emotion recognition (Mocanu, Tapu & Zaharia 2023).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)


def _readable_types() -> None:
    """Typer prints variadic arguments' Python annotation (``<list[Path]>``); show ``<path>`` as for one."""
    import re

    from typer.core import TyperArgument

    shown = getattr(TyperArgument, "display_type_rich", None)
    if shown is None:  # another Typer: nothing to mend
        return

    def display(self, ctx):
        label = shown(self, ctx)
        return re.sub(r"<list\[(\w+)\]>", lambda m: f"<{m.group(1).lower()}>", label) if label else label

    TyperArgument.display_type_rich = display


_readable_types()
err = Console(stderr=True)  # progress, notes, warnings, errors
out = Console()  # results
SHOW_PER_REASON = 10
DEBUG = "AVEMO_DEBUG"


class _Settings:
    quiet = False


settings = _Settings()


def fail(message: str, code: int = 2) -> NoReturn:
    # Escaped: messages name files and extras ("avemo[gpu]") that Rich would read as markup.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def note(message: str) -> None:
    """A line of information on stderr (silenced by --quiet)."""
    if not settings.quiet:
        err.print(message, highlight=False, soft_wrap=True)


def _one_line(error: BaseException) -> str:
    """An error as one line that names the file (OSError keeps the file name apart from its message)."""
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror or error}"
    return " ".join(str(error).split())


def _loud_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    err.print(f"[bold red]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def command(fn: Callable) -> Callable:
    """Register ``fn`` as a command whose errors never reach the user as a traceback."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        warnings.showwarning = _loud_warning
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except KeyboardInterrupt:
            fail("interrupted; finished work is kept (run the same command to resume where it resumes)", code=130)
        except (AvemoError, OSError) as error:
            if os.environ.get(DEBUG):
                raise
            fail(_one_line(error))
        except Exception as error:  # noqa: BLE001 - the last line of defence: one line, not a traceback
            if os.environ.get(DEBUG):
                raise
            fail(f"{type(error).__name__}: {_one_line(error)} (an avemo bug or an unforeseen input; run with "
                 f"{DEBUG}=1 for the traceback, and please report it)")
    return app.command()(run)


class Reporter:
    """Progress of long work: a bar on a terminal; a plain line every ~10 % when stderr is a log; nothing with
    --quiet. ``line`` prints a note above the bar."""

    def __init__(self, description: str, total: int | None = None, unit: str = "") -> None:
        self.description, self.total, self.unit = description, total, unit
        self.done, self.status, self.start = 0, "", time.perf_counter()
        self.live = err.is_terminal and not settings.quiet
        self._next = 0.1
        self.bar: Progress | None = None
        if self.live:
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                                TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                console=err, transient=False)
            self.task = self.bar.add_task(description, total=total, status="")

    def __enter__(self) -> Reporter:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def restart(self, description: str, total: int | None) -> None:
        self.description, self.total, self.done, self._next, self.status = description, total, 0, 0.1, ""
        self.start = time.perf_counter()
        if self.bar is not None:
            self.bar.reset(self.task, total=total, description=description, status="")

    def set_total(self, total: int) -> None:
        self.total = total
        if self.bar is not None:
            self.bar.update(self.task, total=total)

    def advance(self, done: int | None = None, status: str = "") -> None:
        self.done = self.done + 1 if done is None else done
        self.status = status
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, status=status)
        elif not settings.quiet and self.total and self.done / self.total >= self._next - 1e-9:
            while self._next <= self.done / self.total + 1e-9:
                self._next += 0.1
            elapsed = time.perf_counter() - self.start
            err.print(f"{self.description}: {self.done}/{self.total} {self.unit} ({100 * self.done // self.total}%), "
                      f"{elapsed:.0f} s" + (f"; {status}" if status else ""), highlight=False, soft_wrap=True)

    def line(self, message: str) -> None:
        if not settings.quiet:
            (self.bar.console if self.bar is not None else err).print(message, highlight=False, soft_wrap=True)


def _default(value: object) -> str:
    return str(value)


@app.callback(invoke_without_command=True)
def main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Results and errors only: no progress bars or notes "
                                                              "(for scripts).")] = False,
) -> None:
    settings.quiet = quiet
    if version:
        typer.echo(__version__)
        raise typer.Exit()
    from avemo.machine import prepare_environment

    prepare_environment()  # before any command imports torch: OpenMP reads its waiting policy once


@command
def synth(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT", help="Folder to write Actor_XX/*.mp4 into.")],
    actors: Annotated[int, typer.Option(min=1, max=24, help="Number of actors (RAVDESS has 24).")] = 8,
    clips_per_actor: Annotated[int, typer.Option(min=1, max=60, help="Clips per actor; 8 covers every emotion once.")] = 16,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed writes the same dataset.")] = 0,
    width: Annotated[int, typer.Option(min=16, help="Frame width in pixels.")] = 160,
    height: Annotated[int, typer.Option(min=16, help="Frame height in pixels.")] = 120,
    fps: Annotated[float, typer.Option(min=1.0, help="Frames per second.")] = 30.0,
    split_cues: Annotated[bool, typer.Option("--split-cues", help="Face shows the emotion's pair, voice the member: "
                                                                   "only fusion tells all 8.")] = False,
    codec: Annotated[Codec, typer.Option(help="h264 (as RAVDESS), or vp9 (what DALI's CPU decoder reads).")] = Codec.h264,
    faces: Annotated[Faces, typer.Option(help="drawn, or real: a photographed face placed and scaled per actor "
                                              "(true boxes in OUT/faces.json, OpenFace-style landmark CSVs in "
                                              "OUT/landmarks/), which --crop face and --crop landmarks find.")] = Faces.drawn,
    long: Annotated[Optional[float], typer.Option("--long", min=1.0, help="Instead of a dataset: one clip of this "
                                                  "many seconds, OUT/long-actor<NN>.mp4, of the actor speaking clip-"
                                                  "like utterances whose emotion changes every two (5-7 s), with the "
                                                  "truth in the .json beside it (for avemo timeline).",
                                                  show_default="none")] = None,
    actor: Annotated[int, typer.Option(min=1, max=24, help="With --long: the actor (as the dataset with this "
                                                           "--seed draws them).")] = 1,
) -> None:
    """Write a synthetic RAVDESS-format dataset whose emotions show in face and voice."""
    from avemo.synth import SynthConfig, synthesize, synthesize_long

    try:
        config = SynthConfig(width=width, height=height, fps=fps, split_cues=split_cues, codec=codec.value,
                             faces=faces.value)
    except ValueError as error:
        fail(str(error))
    if long is not None:
        path = out_dir / f"long-actor{actor:02d}.mp4"
        with err.status(f"writing {path}") if err.is_terminal and not settings.quiet else contextlib.nullcontext():
            truth = synthesize_long(path, long, seed, actor, config)
        changes = ", ".join(f"{s['start']:.1f} s {s['emotion']}" for s in truth["segments"])
        out.print(f"wrote {path} ({long:g} s: {changes}); truth in {path.with_suffix('.json')}", highlight=False,
                  soft_wrap=True)
        return
    with Reporter("synthesising", actors * clips_per_actor, "clips") as progress:
        paths = synthesize(out_dir, actors, clips_per_actor, seed, config, on_clip=lambda _: progress.advance())
    out.print(f"wrote {len(paths)} clips of {actors} actors to {out_dir}", highlight=False, soft_wrap=True)


def _report_skips(title: str, items: list[Skipped]) -> None:
    by_reason: dict[str, list] = {}
    for item in items:
        by_reason.setdefault(item.reason, []).append(item)
    for reason, group in sorted(by_reason.items()):
        err.print(f"[yellow]{title}[/] {escape(reason)}: {len(group)}", highlight=False)
        for item in group[:SHOW_PER_REASON]:
            err.print(f"  {escape(item.line())}", highlight=False, soft_wrap=True)
        if len(group) > SHOW_PER_REASON:
            err.print(f"  ... and {len(group) - SHOW_PER_REASON} more (all listed in the cache's report.json)")


def _extract_with_progress(config: ExtractConfig) -> ExtractSummary:
    """Run an extraction with progress, then print skipped files and failures (stderr) and a summary (stdout)."""
    from avemo.extraction import NothingToExtract, run_extract

    if launched_rank() != 0:  # another torchrun process: rank 0 reports for all of them
        try:
            return run_extract(config)
        except AvemoError as error:
            fail(f"rank {launched_rank()}: {_one_line(error)}")
    with Reporter("extracting", None, "clips") as progress:
        def started(todo: int, summary: ExtractSummary) -> None:
            progress.set_total(todo)
            progress.line(f"{summary.backbones}; backend {summary.backend} on {summary.device}, decoder "
                          f"{summary.decoder}; {summary.found} clips found, {summary.cached_before} already cached, "
                          f"{todo} to extract; cache {config.cache} (fingerprint {summary.spec.fingerprint})")

        try:
            summary = run_extract(config, on_start=started, on_clip=lambda _: progress.advance())
        except NothingToExtract as error:
            _report_skips("skipped", error.skipped)
            fail(str(error), code=1)
    _report_skips("skipped", summary.skipped)
    _report_skips("failed", summary.failed)
    if summary.damaged:
        err.print(f"[yellow]damaged entries extracted again[/]: {len(summary.damaged)}", highlight=False)
        for path, reason in summary.damaged:
            err.print(f"  {escape(str(path))}: {escape(reason)}", highlight=False, soft_wrap=True)
    if summary.no_face:
        err.print(f"[yellow]no face found[/] (centre crop used): {len(summary.no_face)}", highlight=False)
        for path in summary.no_face[:SHOW_PER_REASON]:
            err.print(f"  {escape(str(path))}", highlight=False, soft_wrap=True)
    if summary.no_landmarks:
        err.print(f"[yellow]no usable landmark file[/] (detector or centre crop used): {len(summary.no_landmarks)}",
                  highlight=False)
        for path, source in summary.no_landmarks[:SHOW_PER_REASON]:
            err.print(f"  {escape(str(path))} ({'detected face' if source == 'face' else 'centre crop'})",
                      highlight=False, soft_wrap=True)
        if len(summary.no_landmarks) > SHOW_PER_REASON:
            err.print(f"  ... and {len(summary.no_landmarks) - SHOW_PER_REASON} more (all listed in the cache's "
                      "report.json)")
    table = Table(title="avemo extract", show_header=False)
    rows = [
        ("clips found", summary.found), ("already cached", summary.cached_before),
        *([("processes (torchrun ranks)", summary.ranks)] if summary.ranks > 1 else []),
        ("extracted now", summary.written), ("failed", len(summary.failed)),
        *([("damaged entries extracted again", len(summary.damaged))] if summary.damaged else []),
        ("skipped at discovery", len(summary.skipped)), ("entries in cache", summary.entries),
        *([("no face found (centre crop used)", len(summary.no_face))] if config.video.crop == Crop.face else []),
        *([("no usable landmark file (detector or centre used)", len(summary.no_landmarks))]
          if config.video.crop == Crop.landmarks else []),
        ("time", f"{summary.seconds:.1f} s, of which set-up {summary.setup_seconds:.1f} s "
                 f"({summary.clips_per_second:.2f} clips/s)"),
        ("decoding (workers, summed)", f"{summary.decode_seconds:.1f} s"),
        ("backbones", f"{summary.backbone_seconds:.1f} s on {summary.backend}/{summary.device}"),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    out.print(table)
    return summary


_WEIGHTS_VIDEO = "Hara et al. 3D ResNet checkpoint (2017 or 2020 release), or 'random'."
_WEIGHTS_AUDIO = "torchvision resnet18-f37072fd.pth, 'imagenet' (downloads), or 'random'."


@command
def extract(
    data: Annotated[Optional[Path], typer.Argument(metavar="DATA", help="Dataset folder: RAVDESS or CREMA-D files, or "
                                                   "DATA/<label>/*.mp4 with --dataset folders (none with --manifest).",
                                                   show_default=False)] = None,
    cache: Annotated[Optional[Path], typer.Option(help="Feature cache folder (created, or resumed when it exists). "
                                                       "Required.", show_default=False)] = None,
    dataset: Annotated[Dataset, typer.Option(help="Where clips and labels come from: RAVDESS or CREMA-D names, "
                                                  "class folders, or a manifest.")] = Dataset.ravdess,
    speaker_pattern: Annotated[Optional[str], typer.Option(help="--dataset folders: a regular expression whose group "
                                                                "(?P<speaker>...) finds the speaker in a file name "
                                                                "(without it each clip is its own speaker).",
                                                           show_default="none")] = None,
    manifest: Annotated[Optional[Path], typer.Option(help="A CSV or JSONL of path,label,speaker[,audio_path,fold,...] "
                                                          "(implies --dataset manifest).", show_default="none")] = None,
    channels: Annotated[str, typer.Option(help="RAVDESS vocal channels to use: speech, song or speech,song.")] = "speech,song",
    video_weights: Annotated[str, typer.Option(help=_WEIGHTS_VIDEO)] = "random",
    video_arch: Annotated[str, typer.Option(help="3D ResNet depth matching the checkpoint: r3d10 ... r3d200.")] = "r3d101",
    video_normalization: Annotated[VideoNormalization, typer.Option(help="Input normalisation; auto reads the release "
                                                                         "from the checkpoint.")] = VideoNormalization.auto,
    audio_weights: Annotated[str, typer.Option(help=_WEIGHTS_AUDIO)] = "random",
    backend: Annotated[BackendName, typer.Option(help="Runtime for the backbones. auto: tensorrt > onnxruntime-gpu > "
                                                      "torch on CUDA (the first two need --engines), torch on a CPU.")] = BackendName.auto,
    engines: Annotated[Optional[Path], typer.Option(help="Folder of graphs from avemo export (for onnxruntime and "
                                                         "tensorrt; TensorRT engines are built into it on first use).",
                                                    show_default="none")] = None,
    precision: Annotated[Precision, typer.Option(help="fp32; bf16 (torch); fp16 (CUDA, or exported fp16 graphs).")] = Precision.fp32,
    compile: Annotated[bool, typer.Option("--compile", help="torch backend: run the backbones through torch.compile.")] = False,
    cuda_graphs: Annotated[bool, typer.Option("--cuda-graphs", help="torch backend on CUDA: replay captured CUDA graphs.")] = False,
    device: Annotated[DeviceName, typer.Option(help="auto: CUDA when PyTorch sees a GPU.")] = DeviceName.auto,
    decoder: Annotated[Decoder, typer.Option(help="Video decoding: pyav (CPU workers), dali (the GPU's decoder on CUDA; "
                                                  "VP9 only on a CPU), auto (dali on CUDA when installed).")] = Decoder.auto,
    batch_size: Annotated[int, typer.Option(min=1, help="Clips per backbone batch (each has 6 snippets).")] = 2,
    workers: Annotated[int, typer.Option(min=0, help="Decoding processes (0 decodes in the main process).")] = 1,
    size: Annotated[int, typer.Option(min=32, help="Crop side in pixels (Hara's models: 112).")] = 112,
    crop: Annotated[Crop, typer.Option(help="face: a still box around the detected face (centre crop where none is "
                                            "found); landmarks: the same box from OpenFace landmark files "
                                            "(--landmarks; the detector where a file is missing); center; none: "
                                            "the whole frame squashed.")] = Crop.face,
    landmarks: Annotated[Optional[Path], typer.Option(help="With --crop landmarks: folder of OpenFace CSVs named "
                                                           "after the clips (RAVDESS's FacialTracking files).",
                                                      show_default="none")] = None,
    landmark_confidence: Annotated[float, typer.Option(min=0.0, max=1.0, help="With --crop landmarks: ignore frames "
                                                       "whose tracking confidence is below this.")] = 0.8,
    dtype: Annotated[Dtype, typer.Option(help="Storage type of the features.")] = Dtype.float16,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for torch.",
                                                   show_default="the cores free to this process")] = None,
) -> None:
    """Turn every clip into cached video (6, 2048, 16) and audio (6, 512) backbone features."""
    _use_threads(threads)
    from avemo.engines.backbones import BackboneConfig
    from avemo.extraction import ExtractConfig
    from avemo.pipeline.landmarks import LandmarkSettings
    from avemo.pipeline.video import VideoConfig

    wanted = tuple(c.strip() for c in channels.split(",") if c.strip())
    if not wanted or set(wanted) - {"speech", "song"}:
        fail(f"--channels {channels!r}: use speech, song or speech,song")
    if cache is None:
        fail("--cache DIR is required: the folder the features go into")
    if manifest is not None:
        dataset = Dataset.manifest
        if not manifest.is_file():
            fail(f"{manifest}: no such manifest file")
    elif dataset == Dataset.manifest:
        fail("--dataset manifest needs --manifest FILE (a CSV or JSONL of path,label,speaker)")
    elif data is None or not data.is_dir():
        fail(f"{data}: not a folder; point avemo at the folder that holds the dataset" if data else
             "give the dataset folder DATA (or --manifest FILE)")
    if speaker_pattern is not None:
        from avemo.pipeline.folders import speaker_regex

        if dataset != Dataset.folders:
            fail("--speaker-pattern reads speakers from file names with --dataset folders; a manifest has a "
                 "speaker column, RAVDESS and CREMA-D names carry the actor")
        speaker_regex(speaker_pattern)  # a bad pattern fails now, not after the models are built
    if crop == Crop.landmarks and landmarks is None:
        fail("--crop landmarks needs --landmarks DIR: the folder of OpenFace CSVs named after the clips")
    if landmarks is not None and crop != Crop.landmarks:
        fail(f"--landmarks {landmarks}: used only with --crop landmarks")
    if landmarks is not None and not landmarks.is_dir():
        fail(f"--landmarks {landmarks}: not a folder; give the folder of OpenFace CSVs named after the clips")
    config = ExtractConfig(
        data=data, cache=cache, dataset=dataset.value, vocal_channels=wanted, speaker_pattern=speaker_pattern,
        manifest=manifest,
        backbones=BackboneConfig(video_weights=video_weights, video_arch=video_arch,
                                 video_normalization=video_normalization.value, audio_weights=audio_weights),
        video=VideoConfig(size=size, resize=size, crop=crop.value), backend=backend.value, engines=engines,
        precision=precision.value, compile=compile, cuda_graphs=cuda_graphs, device=device.value,
        decoder=decoder.value, batch_size=batch_size, workers=workers, dtype=dtype.value, landmarks=landmarks,
        landmark_settings=LandmarkSettings(min_confidence=landmark_confidence))
    summary = _extract_with_progress(config)
    if launched_rank() == 0 and summary.entries == 0:
        fail(f"no usable clip in {manifest or data}; check the folder and the file names", code=1)


@command
def export(
    engines: Annotated[Path, typer.Option(help="Folder to write the ONNX graphs and their manifests into.")],
    video_weights: Annotated[str, typer.Option(help=_WEIGHTS_VIDEO)] = "random",
    video_arch: Annotated[str, typer.Option(help="3D ResNet depth matching the checkpoint.")] = "r3d101",
    video_normalization: Annotated[VideoNormalization, typer.Option(help="Input normalisation; auto reads the release.")] = VideoNormalization.auto,
    audio_weights: Annotated[str, typer.Option(help=_WEIGHTS_AUDIO)] = "random",
    size: Annotated[int, typer.Option(min=32, help="Crop side the video graph takes (as avemo extract --size).")] = 112,
    precision: Annotated[ExportPrecision, typer.Option(help="fp32, or fp16 (half-precision weights inside the graph).")] = ExportPrecision.fp32,
    max_batch: Annotated[int, typer.Option(min=1, help="Largest batch (snippets) a graph accepts; more are split.")] = 64,
    tensorrt: Annotated[bool, typer.Option("--tensorrt", help="Also build TensorRT engines for this GPU (needs the gpu extra).")] = False,
    opt_batch: Annotated[int, typer.Option(min=1, help="Batch (snippets) TensorRT tunes for: extract's --batch-size x 6.")] = 12,
) -> None:
    """Export both backbones to ONNX exactly as extract runs them (dynamic batch, checked, with manifests)."""
    import torch

    from avemo.engines.backbones import BackboneConfig
    from avemo.pipeline.video import VideoConfig

    if tensorrt:
        from avemo.engines.tensorrt import tensorrt_installed

        if not tensorrt_installed():
            fail("--tensorrt: TensorRT is not installed; pip install 'avemo[gpu]' on a CUDA machine")
        if not torch.cuda.is_available():
            fail("--tensorrt: engines are built for the GPU they run on, and PyTorch sees no CUDA device here")
    try:
        from avemo.export.onnx import ExportConfig, export_backbones
        import onnxscript  # noqa: F401 - torch.onnx's exporter needs it; say so now rather than mid-export
    except ImportError as error:
        fail(f"ONNX export needs the onnx extra: pip install 'avemo[onnx]' ({error.name} is missing)")
    config = ExportConfig(engines=engines, precision=precision.value, max_batch=max_batch,
                          video=VideoConfig(size=size, resize=size),
                          backbones=BackboneConfig(video_weights=video_weights, video_arch=video_arch,
                                                   video_normalization=video_normalization.value,
                                                   audio_weights=audio_weights))
    with err.status("exporting both backbones") if err.is_terminal and not settings.quiet else contextlib.nullcontext():
        paths = export_backbones(config)
    for path in paths:
        out.print(f"wrote {path} and {path.with_suffix('.json').name}", highlight=False, soft_wrap=True)
    runtime = "onnxruntime"
    if tensorrt:
        from avemo.engines.tensorrt import build_engines

        for plan in build_engines(paths, torch.device("cuda"), opt_batch=opt_batch):
            out.print(f"TensorRT engine {plan}", highlight=False, soft_wrap=True)
        runtime = "tensorrt"
    note(f"use them with: avemo extract DATA --cache DIR --backend {runtime} --engines {engines} --precision "
         f"{precision.value} --size {size} (and the same weights)")


@command
def inspect(
    cache: Annotated[Path, typer.Argument(metavar="CACHE", help="Feature cache folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Read every entry and check its checksum (exit 1 if one "
                                         "is damaged).")] = False,
) -> None:
    """Describe a feature cache: what made its features, entries, shapes, actors and emotions;
    damaged entries by name."""
    from avemo.cache import FeatureCache

    store = FeatureCache.open(cache)
    spec = store.spec
    entries, broken = store.scan()
    info = {
        "cache": str(cache),
        "entries": len(entries),
        "video_shape": store.manifest["video_shape"],
        "audio_shape": store.manifest["audio_shape"],
        "dtype": spec.dtype,
        "fingerprint": store.fingerprint,
        "spec": spec.to_json(),
        "produced_by": dict(Counter(e["produced_by"] or "unrecorded" for e in entries)),
        "datasets": dict(Counter(e["dataset"] for e in entries)),
        "actors": {str(k): v for k, v in sorted(Counter(e["actor"] for e in entries).items())},
        "emotions": dict(sorted(Counter(e["emotion"] for e in entries).items())),
        "broken_entries": [str(p) for p in broken],
        **store.health(broken, verify),
    }
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        if verify and info["damaged_entries"]:
            raise typer.Exit(1)
        return
    table = Table(title=f"avemo cache {escape(str(cache))}", show_header=False)
    random_ = {"video weights": spec.video_backbone.weights.random, "audio weights": spec.audio_backbone.weights.random}
    for key, value in spec.summary():
        table.add_row(key, f"[bold red]{value}[/]" if random_.get(key) else escape(value))
    table.add_row("shapes", f"video {tuple(info['video_shape'])}, audio {tuple(info['audio_shape'])}")
    table.add_row("entries", str(len(entries)))
    table.add_row("made by", escape(", ".join(f"{k}: {v}" for k, v in info["produced_by"].items()) or "-"))
    for key in ("datasets", "actors", "emotions"):
        table.add_row(key, escape(", ".join(f"{k}: {v}" for k, v in info[key].items()) or "-"))
    table.add_row("broken entries", escape(", ".join(Path(p).name for p in info["broken_entries"][:10]) or "none")
                  + (f" and {len(broken) - 10} more" if len(broken) > 10 else ""))
    out.print(table)
    for item in info["damaged_entries"]:
        err.print(f"[red]damaged[/] {escape(item['entry'])}: {escape(item['reason'])}", highlight=False,
                  soft_wrap=True)
    if info["damaged_entries"]:
        note(f"the avemo extract command that made {cache} extracts them again")
    if verify and info["damaged_entries"]:
        raise typer.Exit(1)


def _train_config(config_file: Path | None, overrides: dict) -> TrainConfig:
    """TrainConfig from a TOML/JSON file, then the options given on the command line."""
    import tomllib

    data: dict = {}
    if config_file is not None:
        try:
            text = config_file.read_text()
            data = json.loads(text) if config_file.suffix == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as error:
            fail(f"{config_file}: cannot read the configuration ({' '.join(str(error).split())})")
    model = dict(data.pop("model", {}))
    for key, value in overrides.items():
        if value is None:
            continue
        if key in ("modality", "cross_attention", "dim"):
            model[key] = value
        else:
            data[key] = value
    try:
        return TrainConfig.from_dict({**data, "model": model})
    except (TypeError, ValueError) as error:
        fail(f"{config_file or 'options'}: {error}")


def _run_training(cache: Path, run: Path, config: TrainConfig, resume: bool, skip_damaged: bool = False) -> None:
    from avemo.fusion.model import FusionModel, count_parameters, flops_per_clip
    from avemo.fusion.runs import train_run

    if launched_rank() != 0:  # another torchrun process: rank 0 reports for all of them
        try:
            train_run(cache, run, config, resume=resume, skip_damaged=skip_damaged)
        except (AvemoError, OSError, ValueError, RuntimeError) as error:  # RuntimeError: rank 0 stopped first
            fail(f"rank {launched_rank()}: {_one_line(error)}")
        return
    with Reporter("training", config.epochs, "epochs") as progress:
        def on_start(actual: TrainConfig, folds: list) -> None:
            model = FusionModel(actual.model)  # the cache's real shapes, not the defaults
            progress.line(f"model: {count_parameters(model) / 1e6:.2f} M parameters, "
                          f"{flops_per_clip(model) / 1e6:.0f} MFLOP per clip; loss {actual.loss}; protocol "
                          f"{actual.protocol}; {len(folds)} fold(s)")

        def on_fold(fold) -> None:
            actors = f"test actors {fold.test_actors}, validation {fold.val_actors}" if fold.test_actors else \
                "random clips"
            progress.line(f"{fold.name}: {actors}; {len(fold.train)} training clips")
            progress.restart(fold.name, config.epochs)

        def on_epoch(epoch: int, metrics: dict) -> None:
            progress.advance(epoch, f"loss {metrics['train/loss']:.3f} val UAR {metrics['val/uar']:.3f}")

        try:
            results = train_run(cache, run, config, resume=resume, on_start=on_start, on_fold=on_fold,
                                on_epoch=on_epoch, skip_damaged=skip_damaged)
        except ValueError as error:
            fail(_one_line(error))
    table = Table(title=f"avemo train {escape(str(run))}")
    for column in ("fold", "best epoch", "validation UAR", "epochs run"):
        table.add_column(column)
    for r in results:
        table.add_row(r.name, str(r.best_epoch), f"{r.best_val_uar:.3f}", str(r.epochs_run))
    out.print(table)


@command
def train(
    cache: Annotated[Path, typer.Argument(metavar="CACHE", help="Feature cache made by avemo extract.")],
    run: Annotated[Path, typer.Option("--run", "--run-dir", help="Run folder for configuration, checkpoints, "
                                      "predictions, report (--run-dir under torchrun, which takes --run for its own).")],
    config: Annotated[Optional[Path], typer.Option(help="TOML or JSON file with training settings (the options "
                                                        "below override it).", show_default="none")] = None,
    folds: Annotated[Optional[str], typer.Option(help="Folds to run, e.g. 1,3.", show_default="all")] = None,
    n_folds: Annotated[Optional[int], typer.Option(help="Number of actor folds.", show_default="6 RAVDESS, 5 CREMA-D")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Maximum epochs per fold.", show_default=_default(TrainConfig.epochs))] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=2, help="Clips per batch.", show_default=_default(TrainConfig.batch_size))] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (AdamW).", show_default=_default(TrainConfig.lr))] = None,
    patience: Annotated[Optional[int], typer.Option(min=1, help="Epochs without a better validation UAR before "
                                                                "stopping.", show_default=_default(TrainConfig.patience))] = None,
    loss: Annotated[Optional[Loss], typer.Option(help="emotion-metric (the paper's) or triplet (the seed's).",
                                                 show_default=TrainConfig.loss)] = None,
    protocol: Annotated[Optional[Protocol], typer.Option(help="actors, or random-clips (the seed's leaky split).",
                                                         show_default=TrainConfig.protocol)] = None,
    modality: Annotated[Optional[Modality], typer.Option(help="Ablation: both, video or audio.", show_default="both")] = None,
    cross_attention: Annotated[Optional[bool], typer.Option("--cross-attention/--no-cross-attention",
                                                            help="Ablation: fuse without cross-attention.",
                                                            show_default="cross-attention")] = None,
    dim: Annotated[Optional[int], typer.Option(help="Model width after the input projections.", show_default="256")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.", show_default=_default(TrainConfig.seed))] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its last checkpoints.")] = False,
    skip_damaged: Annotated[bool, typer.Option("--skip-damaged", help="Train without cache entries whose checksum "
                                               "fails (named, and listed in the run's config.json) instead of "
                                               "refusing; avemo extract rebuilds them.")] = False,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for torch.",
                                                   show_default="the cores free to this process")] = None,
) -> None:
    """Train the attention fusion model on cached features, fold by fold (actor-independent)."""
    _use_threads(threads)
    try:
        chosen = [int(k) for k in folds.split(",")] if folds else None
    except ValueError:
        fail(f"--folds {folds!r}: give fold numbers like 1,3")
    settings_ = _train_config(config, {
        "folds": chosen, "n_folds": n_folds, "epochs": epochs, "batch_size": batch_size, "lr": lr, "patience": patience,
        "loss": loss.value if loss else None, "protocol": protocol.value if protocol else None,
        "modality": modality.value if modality else None, "cross_attention": cross_attention, "dim": dim, "seed": seed})
    if not (cache / "manifest.json").is_file():
        fail(f"{cache}: not an avemo feature cache (no manifest.json); create one with avemo extract")
    _run_training(cache, run, settings_, resume, skip_damaged)
    if launched_rank() == 0:
        note(f"checkpoints and predictions in {run}; next: avemo evaluate {run}")


@command
def evaluate(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="Run folder written by avemo train.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Score a run on its test actors: per fold and mean ± std; writes report.json/.md and two PNGs."""
    from avemo.reports.report import evaluate_run

    try:
        report = evaluate_run(run)
    except (ValueError, KeyError) as error:
        fail(_one_line(error))
    if as_json:
        typer.echo(json.dumps(report, indent=1))
        return
    _show_evaluation(run, report)


def _show_evaluation(run: Path, report: dict) -> None:
    primary = report["heads"][report["primary_head"]]
    table = Table(title=f"avemo evaluate {escape(str(run))} ({report['primary_head']} predictions)")
    for column in ("fold", "test actors", "accuracy", "UAR", "macro-F1"):
        table.add_column(column)
    for f in primary["per_fold"]:
        table.add_row(f["fold"], ", ".join(map(str, f["test_actors"])), f"{f['accuracy']:.3f}", f"{f['uar']:.3f}",
                      f"{f['macro_f1']:.3f}")
    ms = primary["mean_std"]
    table.add_row("mean ± std", "", *(f"{ms[k]['mean']:.3f} ± {ms[k]['std']:.3f}" for k in ("accuracy", "uar", "macro_f1")))
    out.print(table)
    note(f"report: {run / 'report.md'}, {run / 'report.json'}; plots: {run / 'confusion.png'}, {run / 'embedding.png'}")


@command
def predict(
    videos: Annotated[list[Path], typer.Argument(metavar="VIDEO", help="Video files (with their soundtrack).")],
    run: Annotated[Path, typer.Option(help="Run folder written by avemo train.")],
    video_weights: Annotated[Optional[str], typer.Option(help="Only if the file the run's cache was extracted with has "
                                                              "moved: where it is now (verified by SHA-256).",
                                                         show_default="the run's")] = None,
    audio_weights: Annotated[Optional[str], typer.Option(help="Likewise for the audio weights.",
                                                         show_default="the run's")] = None,
    device: Annotated[DeviceName, typer.Option(help="auto: CUDA when PyTorch sees a GPU.")] = DeviceName.auto,
    top: Annotated[int, typer.Option(min=1, help="Classes to show per video (best first).")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Rank the emotions of new videos with a trained run (decode, backbones, fusion; all folds vote).

    Exit code 0 when every file was predicted, 3 when some failed, 1 when none could be.
    """
    from avemo.predict import predict_files

    results = predict_files(videos, run, video_weights, audio_weights, device.value)
    if as_json:
        typer.echo(json.dumps([{"path": str(r.path), "error": r.error or None,
                                "emotions": [{"emotion": e, "probability": round(p, 4)} for e, p in r.ranked[:top]]}
                               for r in results], indent=1))
    for r in results:
        if r.error:
            err.print(f"[red]{escape(str(r.path))}[/]: {escape(r.error)}", highlight=False, soft_wrap=True)
        elif not as_json:
            ranked = ", ".join(f"{e} {p:.2f}" for e, p in r.ranked[:top])
            out.print(f"[bold]{escape(str(r.path))}[/]: {ranked}", highlight=False, soft_wrap=True)
    failed = sum(bool(r.error) for r in results)
    if failed == len(results):
        raise typer.Exit(1)
    if failed:
        raise typer.Exit(3)


@command
def timeline(
    video: Annotated[Path, typer.Argument(metavar="VIDEO", help="A video of any length (with its soundtrack).")],
    run: Annotated[Path, typer.Option(help="Run folder written by avemo train.")],
    window: Annotated[Optional[float], typer.Option(min=0.1, help="Window length in seconds.",
                                                    show_default="the run's clip length: the mean duration of its "
                                                                 "cache's clips, or 3.0 when the cache is gone")] = None,
    hop: Annotated[float, typer.Option(min=0.04, help="Seconds from one window's start to the next.")] = 1.0,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Folder for timeline.csv, timeline.json and "
                                                    "timeline.png.", show_default="VIDEO's name + '-timeline'")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per backbone batch.")] = 4,
    device: Annotated[DeviceName, typer.Option(help="auto: CUDA when PyTorch sees a GPU.")] = DeviceName.auto,
    as_json: Annotated[bool, typer.Option("--json", help="Print the timeline as JSON on stdout.")] = False,
) -> None:
    """Emotion over time: slide a window over a long video in one streaming pass; every fold of the run votes.

    Writes a CSV (start, end, top label, a probability per class, face box), a JSON and a plot. A window that
    cannot be decoded is marked and the rest goes on (exit code 3; 1 when none could be).
    """
    from avemo.timeline import TimelineConfig, timeline as run_timeline

    if not video.is_file():
        fail(f"{video}: no such file")
    try:
        config = TimelineConfig(window=window, hop=hop, batch_size=batch_size, device=device.value)
    except ValueError as error:
        fail(str(error))
    target = out_dir if out_dir is not None else video.with_name(video.stem + "-timeline")
    with Reporter("timeline", None, "windows") as progress:
        result, _ = run_timeline(video, run, config, on_total=progress.set_total,
                                 on_window=lambda w: progress.advance(status=w.error and "not decoded"))
    paths = result.write(target)
    failed = [w for w in result.windows if w.error]
    for w in failed[:SHOW_PER_REASON]:
        err.print(f"[yellow]{w.start:.1f}-{w.end:.1f} s[/]: {escape(w.error)}", highlight=False, soft_wrap=True)
    if len(failed) > SHOW_PER_REASON:
        err.print(f"  ... and {len(failed) - SHOW_PER_REASON} more windows not decoded (marked in the CSV)")
    note(f"{len(result.windows)} windows of {result.window:.2f} s ({result.window_source}) every {result.hop:g} s"
         + ("" if result.audio else "; no soundtrack: video only"))
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=1))
    else:
        table = Table(title=f"avemo timeline {escape(str(video))}")
        for column in ("start", "end", "top", "probability"):
            table.add_column(column)
        for w in result.windows:
            p = max(w.probabilities) if w.probabilities else None
            table.add_row(f"{w.start:.1f}", f"{w.end:.1f}", escape(result.top(w) or "not decoded"),
                          f"{p:.2f}" if p is not None else "-")
        out.print(table)
    note(f"wrote {', '.join(str(p) for p in paths)}")
    if len(failed) == len(result.windows):
        raise typer.Exit(1)
    if failed:
        raise typer.Exit(3)


@command
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Fewer, smaller clips and repeats (its time on two cores is in "
                                                        "benchmarks/RESULTS.md).")] = False,
    train_scale: Annotated[bool, typer.Option("--train-scale", help="Only time a full 6-fold avemo train on a "
                                                                    "RAVDESS-sized cache of random features (minutes).")] = False,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write every figure as JSON to this file.",
                                                      show_default="none")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the Markdown table (bench.md) and chart (bench.png).")] = Path("avemo-bench"),
    device: Annotated[DeviceName, typer.Option(help="auto: CUDA when PyTorch sees a GPU.")] = DeviceName.auto,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for torch.",
                                                   show_default="the cores free to this process")] = None,
) -> None:
    """Measure decoding, backbones, extraction and a fusion step side by side, as multiples of the seed."""
    _use_threads(threads)
    from avemo.bench.suite import BenchConfig, plot, run_bench

    def show(section) -> None:
        table = Table(title=section.title, caption=f"baseline: {section.baseline}")
        for column in ("row", "s per unit", "x baseline", "note"):
            table.add_column(column)
        for row in section.rows:
            table.add_row(escape(row.name), f"{row.seconds:.4f} / {row.unit}", f"{row.ratio:.2f}x", escape(row.note))
        out.print(table)
        for limit in section.limits:
            out.print(f"  {escape(limit)}", highlight=False, soft_wrap=True)

    with err.status("benchmarking (sections print as they finish)") if err.is_terminal and not settings.quiet \
            else contextlib.nullcontext():
        report = run_bench(BenchConfig(quick=quick, device=device.value, workdir=None, train_scale=train_scale),
                           on_section=show, on_progress=note)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.md").write_text(report.markdown())
    plot(report, out_dir / "bench.png")
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_json(), indent=1))
    note(f"done: {out_dir / 'bench.md'}, {out_dir / 'bench.png'}" + (f", {json_path}" if json_path else ""))


@command
def demo(
    workdir: Annotated[Path, typer.Option(help="Folder for the synthetic dataset, its cache and the run.")] = Path("avemo-demo"),
    actors: Annotated[int, typer.Option(min=4, max=24, help="Synthetic actors (4 folds need at least 4).")] = 8,
    clips_per_actor: Annotated[int, typer.Option(min=8, max=60, help="Clips per actor.")] = 8,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for torch (default: the cores free to this process).")] = None,
) -> None:
    """synth -> extract -> train -> evaluate on the embedded synthetic dataset (random backbone weights)."""
    _use_threads(threads)
    from avemo.extraction import ExtractConfig
    from avemo.pipeline.video import VideoConfig
    from avemo.synth import synthesize

    data, cache, run = workdir / "data", workdir / "cache", workdir / "run"
    with Reporter("synthesising", actors * clips_per_actor, "clips") as progress:
        synthesize(data, actors, clips_per_actor, seed=0, on_clip=lambda _: progress.advance())
    note("the demo uses random backbone weights: see the README for the pretrained ones")
    # The demo's faces are drawn, not photographed: the face detector would find none in them.
    summary = _extract_with_progress(ExtractConfig(data=data, cache=cache, video=VideoConfig(crop=Crop.center.value)))
    if summary.entries == 0:
        fail(f"no clip of {data} could be extracted", code=1)
    # 32 training clips per fold: a narrow model and short epochs of 2 steps. With standardised inputs 30 epochs
    # learn as well as 60 (held-out UAR, benchmarks/RESULTS.md); 20, or stopping early on the 2 validation
    # actors, did not.
    settings_ = _train_config(None, {"n_folds": 4, "epochs": 30, "batch_size": 16, "lr": 1e-3, "patience": 30,
                                     "dim": 64})
    _run_training(cache, run, settings_, resume=(run / "config.json").exists())
    from avemo.reports.report import evaluate_run

    report = evaluate_run(run)
    _show_evaluation(run, report)
    ms = report["heads"][report["primary_head"]]["mean_std"]
    out.print(f"[bold green]done[/]: held-out actors, {len(report['folds'])} folds: accuracy "
              f"{ms['accuracy']['mean']:.3f} ± {ms['accuracy']['std']:.3f}, UAR {ms['uar']['mean']:.3f} ± "
              f"{ms['uar']['std']:.3f} (chance {1 / len(report['classes']):.3f})", highlight=False)


def _use_threads(threads: int | None) -> None:
    """Size torch's CPU threads to the free cores (or ``--threads``) before the command's work starts."""
    from avemo.machine import configure_threads

    configure_threads(threads)


@command
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object on stdout.")] = False,
    device: Annotated[DeviceName, typer.Option(help="Where the GPU rows run: auto, cpu (GPU rows skipped) or cuda.")] = DeviceName.auto,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for torch.",
                                                   show_default="the cores free to this process")] = None,
) -> None:
    """Check this machine: versions, CPU features, and every runtime/precision/decoder path against CPU fp32 torch."""
    _use_threads(threads)
    from avemo.doctor import Status, run_doctor

    marks = {Status.ok: "[green]ok[/]", Status.failed: "[bold red]FAILED[/]", Status.unavailable: "[dim]not available[/]"}

    def progress(row) -> None:
        if not settings.quiet:
            err.print(f"  {escape(row.path)}: {marks[row.status]}", highlight=False)

    report = run_doctor(device.value, on_row=progress)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=1))
        raise typer.Exit(report.exit_code)
    env = Table(title="avemo doctor: environment", show_header=False)
    for key, value in report.environment.items():
        env.add_row(key, escape(value))
    out.print(env)
    paths = Table(title=f"avemo doctor: paths (device {report.device})", caption=escape(report.about))
    for column in ("path", "status", "clips/s", "detail"):
        paths.add_column(column)
    for row in report.paths:
        speed = f"{row.clips_per_second:.2f}" if row.clips_per_second else ""
        paths.add_row(escape(row.path), marks[row.status], speed, escape(row.detail))
    out.print(paths)
    failed = [r.path for r in report.paths if r.status is Status.failed]
    out.print(f"[bold red]{len(failed)} path(s) FAILED[/]: {escape(', '.join(failed))}" if failed
                  else "[bold green]every available path passed[/]", highlight=False)
    raise typer.Exit(report.exit_code)
