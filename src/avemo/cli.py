"""The ``avemo`` command line: synth, extract, export, inspect, train, evaluate, predict, demo."""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from avemo import __version__
from avemo.distributed import launched_rank

if TYPE_CHECKING:  # the CLI imports torch-heavy modules only inside the command that needs them
    from avemo.extract import ExtractConfig, ExtractSummary
    from avemo.fusion.train import TrainConfig
    from avemo.pipeline.clips import Skipped

app = typer.Typer(help="avemo: audio-visual emotion recognition (Mocanu, Tapu & Zaharia 2023).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console(stderr=True)
SHOW_PER_REASON = 10


class Dataset(str, Enum):
    ravdess = "ravdess"
    cremad = "cremad"


class VideoNormalization(str, Enum):
    auto = "auto"
    hara2017 = "hara2017"
    hara2020 = "hara2020"


def fail(message: str, code: int = 2) -> NoReturn:
    # Escaped: messages name files and extras ("avemo[gpu]") that Rich would read as markup.
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _one_line(err: Exception) -> str:
    """An error as one line that names the file (OSError keeps the file name apart from its message)."""
    if isinstance(err, OSError) and err.filename:
        return f"{err.filename}: {err.strerror or err}"
    return " ".join(str(err).split())


def _loud_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    console.print(f"[bold red]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=False)


@app.callback(invoke_without_command=True)
def main(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()
    from avemo.machine import prepare_environment

    prepare_environment()  # before any command imports torch: OpenMP reads its waiting policy once


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write Actor_XX/*.mp4 into.")],
    actors: Annotated[int, typer.Option(min=1, max=24, help="Number of actors (RAVDESS has 24).")] = 8,
    clips_per_actor: Annotated[int, typer.Option(min=1, max=60, help="Clips per actor; 8 covers every emotion once.")] = 16,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed writes the same dataset.")] = 0,
    width: Annotated[int, typer.Option(min=16, help="Frame width in pixels.")] = 160,
    height: Annotated[int, typer.Option(min=16, help="Frame height in pixels.")] = 120,
    fps: Annotated[float, typer.Option(min=1.0, help="Frames per second.")] = 30.0,
    split_cues: Annotated[bool, typer.Option(help="Face shows the emotion's pair, voice the member: only fusion tells all 8.")] = False,
    codec: Annotated[str, typer.Option(help="h264 (as RAVDESS), or vp9 (what DALI's CPU decoder reads).")] = "h264",
    faces: Annotated[str, typer.Option(help="drawn, or real: a photographed face placed and scaled per actor "
                                            "(true boxes in OUT/faces.json), to test --crop face.")] = "drawn",
) -> None:
    """Write a synthetic RAVDESS-format dataset whose emotions show in face and voice."""
    from avemo.synth import SynthConfig, synthesize

    try:
        config = SynthConfig(width=width, height=height, fps=fps, split_cues=split_cues, codec=codec, faces=faces)
    except ValueError as err:
        fail(str(err))
    with _progress() as progress:
        task = progress.add_task("synthesising", total=actors * clips_per_actor)
        try:
            paths = synthesize(out, actors, clips_per_actor, seed, config, on_clip=lambda _: progress.advance(task))
        except RuntimeError as err:
            progress.stop()
            fail(str(err))
    console.print(f"wrote {len(paths)} clips of {actors} actors to {out}")


def _report_skips(title: str, items: list[Skipped]) -> None:
    by_reason: dict[str, list] = {}
    for item in items:
        by_reason.setdefault(item.reason, []).append(item)
    for reason, group in sorted(by_reason.items()):
        console.print(f"[yellow]{title}[/] {reason}: {len(group)}", highlight=False)
        for item in group[:SHOW_PER_REASON]:
            console.print(f"  {escape(item.line())}", highlight=False, soft_wrap=True)
        if len(group) > SHOW_PER_REASON:
            console.print(f"  ... and {len(group) - SHOW_PER_REASON} more (all listed in the cache's report.json)")


def _extract_with_progress(config: ExtractConfig) -> ExtractSummary:
    """Run an extraction with a progress bar, then print skipped files, failures and a summary table."""
    from avemo.cache import CacheError
    from avemo.engines.graphs import EngineError
    from avemo.engines.weights import WeightsError
    from avemo.extract import run_extract

    cache = config.cache
    warnings.showwarning = _loud_warning
    if launched_rank() != 0:  # another torchrun process: rank 0 reports for all of them
        try:
            return run_extract(config)
        except (OSError, WeightsError, CacheError, EngineError, RuntimeError, ValueError) as err:
            fail(f"rank {launched_rank()}: {_one_line(err)}")
    with _progress() as progress:
        task = progress.add_task("extracting", total=None)

        def started(todo: int, summary: ExtractSummary) -> None:
            progress.update(task, total=todo)
            console.print(f"{summary.backbones}; backend {summary.backend} on {summary.device}, decoder "
                          f"{summary.decoder}; {summary.found} clips found, "
                          f"{summary.cached_before} already cached, {todo} to extract; cache {cache} "
                          f"(fingerprint {summary.fingerprint})", highlight=False, soft_wrap=True)

        try:
            summary = run_extract(config, on_start=started, on_clip=lambda _: progress.advance(task))
        except (OSError, WeightsError, CacheError, EngineError, RuntimeError, ValueError) as err:
            progress.stop()
            fail(_one_line(err))
    _report_skips("skipped", summary.skipped)
    _report_skips("failed", summary.failed)
    if summary.no_face:
        console.print(f"[yellow]no face found[/] (centre crop used): {len(summary.no_face)}", highlight=False)
        for path in summary.no_face[:SHOW_PER_REASON]:
            console.print(f"  {escape(str(path))}", highlight=False, soft_wrap=True)
    (cache / "report.json").write_text(json.dumps({
        "skipped": [{"path": str(s.path), "reason": s.reason, "detail": s.detail} for s in summary.skipped],
        "failed": [{"path": str(s.path), "reason": s.reason, "detail": s.detail} for s in summary.failed],
        "no_face": [str(p) for p in summary.no_face],
    }, indent=1))
    table = Table(title="avemo extract", show_header=False)
    rows = [
        ("clips found", summary.found), ("already cached", summary.cached_before),
        *([("processes (torchrun ranks)", summary.ranks)] if summary.ranks > 1 else []),
        ("extracted now", summary.written), ("failed", len(summary.failed)),
        ("skipped at discovery", len(summary.skipped)), ("entries in cache", summary.entries),
        *([("no face found (centre crop used)", len(summary.no_face))] if config.video.crop == "face" else []),
        ("time", f"{summary.seconds:.1f} s, of which set-up {summary.setup_seconds:.1f} s "
                 f"({summary.clips_per_second:.2f} clips/s)"),
        ("decoding (workers, summed)", f"{summary.decode_seconds:.1f} s"),
        ("backbones", f"{summary.backbone_seconds:.1f} s on {summary.backend}/{summary.device}"),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    console.print(table)
    return summary


@app.command()
def extract(
    data: Annotated[Path, typer.Argument(help="Dataset folder (RAVDESS Actor_XX/ folders or a flat folder).")],
    cache: Annotated[Path, typer.Option(help="Feature cache folder (created, or resumed when it exists).")],
    dataset: Annotated[Dataset, typer.Option(help="File naming scheme of DATA.")] = Dataset.ravdess,
    channels: Annotated[str, typer.Option(help="RAVDESS vocal channels to use: speech, song or speech,song.")] = "speech,song",
    video_weights: Annotated[str, typer.Option(help="Hara et al. 3D ResNet checkpoint (2017 or 2020 release), or 'random'.")] = "random",
    video_arch: Annotated[str, typer.Option(help="3D ResNet depth matching the checkpoint: r3d10 ... r3d200.")] = "r3d101",
    video_normalization: Annotated[VideoNormalization, typer.Option(help="Input normalisation; auto reads the release from the checkpoint.")] = VideoNormalization.auto,
    audio_weights: Annotated[str, typer.Option(help="torchvision resnet18-f37072fd.pth, 'imagenet' (downloads), or 'random'.")] = "random",
    backend: Annotated[str, typer.Option(help="Runtime for the backbones: auto, torch, onnxruntime or tensorrt. "
                                              "auto: tensorrt > onnxruntime-gpu > torch on CUDA (the first two "
                                              "need --engines), torch on a CPU.")] = "auto",
    engines: Annotated[Optional[Path], typer.Option(help="Folder of graphs from avemo export (for onnxruntime and tensorrt; "
                                                         "TensorRT engines are built into it on first use).")] = None,
    precision: Annotated[str, typer.Option(help="fp32 or fp16 for exported graphs; fp32, bf16 or fp16 (CUDA) for torch.")] = "fp32",
    compile: Annotated[bool, typer.Option("--compile", help="torch backend: run the backbones through torch.compile.")] = False,
    cuda_graphs: Annotated[bool, typer.Option("--cuda-graphs", help="torch backend on CUDA: replay captured CUDA graphs.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    decoder: Annotated[str, typer.Option(help="Video decoding: pyav (CPU workers), dali (the GPU's decoder on CUDA; "
                                              "VP9 only on a CPU), or auto (dali on CUDA when installed).")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1, help="Clips per backbone batch (each has 6 snippets).")] = 2,
    workers: Annotated[int, typer.Option(min=0, help="Decoding processes (0 decodes in the main process).")] = 1,
    size: Annotated[int, typer.Option(min=32, help="Crop side in pixels (Hara's models: 112).")] = 112,
    crop: Annotated[str, typer.Option(help="face (a still box around the detected face; centre crop where none is "
                                           "found), center, or none (the whole frame squashed).")] = "face",
    dtype: Annotated[str, typer.Option(help="Storage type of the features: float16 or float32.")] = "float16",
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for torch (default: the cores free to this process).")] = None,
) -> None:
    """Turn every clip into cached video (6, 2048, 16) and audio (6, 512) backbone features."""
    _use_threads(threads)
    from avemo.engines.backbones import BackboneConfig
    from avemo.extract import ExtractConfig
    from avemo.pipeline.video import VideoConfig

    wanted = tuple(c.strip() for c in channels.split(",") if c.strip())
    if not wanted or set(wanted) - {"speech", "song"}:
        fail(f"--channels {channels!r}: use speech, song or speech,song")
    if dtype not in ("float16", "float32"):
        fail(f"--dtype {dtype!r}: use float16 or float32")
    if crop not in ("face", "center", "none"):
        fail(f"--crop {crop!r}: use face, center or none")
    config = ExtractConfig(
        data=data, cache=cache, dataset=dataset.value, vocal_channels=wanted,
        backbones=BackboneConfig(video_weights=video_weights, video_arch=video_arch,
                                 video_normalization=video_normalization.value, audio_weights=audio_weights),
        video=VideoConfig(size=size, resize=size, crop=crop), backend=backend, engines=engines, precision=precision,
        compile=compile, cuda_graphs=cuda_graphs, device=device, decoder=decoder, batch_size=batch_size,
        workers=workers, dtype=dtype)
    summary = _extract_with_progress(config)
    if launched_rank() == 0 and summary.entries == 0:
        fail(f"no usable clip in {data}; check the folder and the file names", code=1)


@app.command()
def export(
    engines: Annotated[Path, typer.Option(help="Folder to write the ONNX graphs and their manifests into.")],
    video_weights: Annotated[str, typer.Option(help="Hara et al. 3D ResNet checkpoint, or 'random'.")] = "random",
    video_arch: Annotated[str, typer.Option(help="3D ResNet depth matching the checkpoint.")] = "r3d101",
    video_normalization: Annotated[VideoNormalization, typer.Option(help="Input normalisation; auto reads the release.")] = VideoNormalization.auto,
    audio_weights: Annotated[str, typer.Option(help="torchvision resnet18 file, 'imagenet' or 'random'.")] = "random",
    size: Annotated[int, typer.Option(min=32, help="Crop side the video graph takes (as avemo extract --size).")] = 112,
    precision: Annotated[str, typer.Option(help="fp32, or fp16 (weights in half precision inside the graph).")] = "fp32",
    max_batch: Annotated[int, typer.Option(min=1, help="Largest batch (snippets) a graph accepts; more are split.")] = 64,
    tensorrt: Annotated[bool, typer.Option(help="Also build TensorRT engines for this GPU (needs the gpu extra).")] = False,
    opt_batch: Annotated[int, typer.Option(min=1, help="Batch (snippets) TensorRT tunes for: extract's --batch-size x 6.")] = 12,
) -> None:
    """Export both backbones to ONNX exactly as extract runs them (dynamic batch, checked, with manifests)."""
    import torch

    from avemo.engines.backbones import BackboneConfig
    from avemo.engines.weights import WeightsError
    from avemo.pipeline.video import VideoConfig

    if tensorrt:
        from avemo.engines.tensorrt import tensorrt_installed

        if not tensorrt_installed():
            fail("--tensorrt: TensorRT is not installed; pip install 'avemo[gpu]' on a CUDA machine")
        if not torch.cuda.is_available():
            fail("--tensorrt: engines are built for the GPU they run on, and PyTorch sees no CUDA device here")
    try:
        from avemo.export.onnx import ExportConfig, export_backbones
    except ImportError as err:
        fail(f"ONNX export needs the onnx extra: pip install 'avemo[onnx]' ({err.name} is missing)")
    warnings.showwarning = _loud_warning
    config = ExportConfig(engines=engines, precision=precision, max_batch=max_batch,
                          video=VideoConfig(size=size, resize=size),
                          backbones=BackboneConfig(video_weights=video_weights, video_arch=video_arch,
                                                   video_normalization=video_normalization.value,
                                                   audio_weights=audio_weights))
    try:
        paths = export_backbones(config)
    except (OSError, WeightsError, ValueError) as err:
        fail(_one_line(err))
    for path in paths:
        console.print(f"wrote {path} and {path.with_suffix('.json').name}", highlight=False)
    runtime = "onnxruntime"
    if tensorrt:
        from avemo.engines.graphs import EngineError
        from avemo.engines.tensorrt import build_engines

        try:
            plans = build_engines(paths, torch.device("cuda"), opt_batch=opt_batch)
        except EngineError as err:
            fail(_one_line(err))
        for plan in plans:
            console.print(f"TensorRT engine {plan}", highlight=False)
        runtime = "tensorrt"
    console.print(f"use them with: avemo extract DATA --cache DIR --backend {runtime} --engines {engines} "
                  f"--precision {precision} (and the same weights)", highlight=False)


@app.command()
def inspect(
    cache: Annotated[Path, typer.Argument(help="Feature cache folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Describe a feature cache: entries, shapes, fingerprint, actors and emotions."""
    from avemo.cache import CacheError, FeatureCache

    try:
        store = FeatureCache.open(cache)
    except CacheError as err:
        fail(str(err))
    entries, broken = store.scan()
    info = {
        "cache": str(cache),
        "entries": len(entries),
        "video_shape": store.manifest["video_shape"],
        "audio_shape": store.manifest["audio_shape"],
        "dtype": store.manifest["dtype"],
        "fingerprint": store.fingerprint,
        "datasets": dict(Counter(e["dataset"] for e in entries)),
        "actors": {str(k): v for k, v in sorted(Counter(e["actor"] for e in entries).items())},
        "emotions": dict(sorted(Counter(e["emotion"] for e in entries).items())),
        "broken_entries": [str(p) for p in broken],
    }
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    table = Table(title=f"avemo cache {cache}", show_header=False)
    for key, value in info.items():
        table.add_row(key, json.dumps(value) if isinstance(value, (dict, list)) else str(value))
    console.print(table)


def _train_config(config_file: Path | None, overrides: dict) -> TrainConfig:
    """TrainConfig from a TOML/JSON file, then the options given on the command line."""
    import tomllib

    from avemo.fusion.train import TrainConfig

    data: dict = {}
    if config_file is not None:
        try:
            text = config_file.read_text()
            data = json.loads(text) if config_file.suffix == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as err:
            fail(f"{config_file}: cannot read the configuration ({' '.join(str(err).split())})")
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
    except (TypeError, ValueError) as err:
        fail(f"{config_file or 'options'}: {err}")


def _run_training(cache: Path, run: Path, config: TrainConfig, resume: bool) -> None:
    from avemo.cache import CacheError
    from avemo.fusion.model import FusionModel, count_parameters, flops_per_clip
    from avemo.fusion.runs import train_run

    warnings.showwarning = _loud_warning
    if launched_rank() != 0:  # another torchrun process: rank 0 reports for all of them
        try:
            train_run(cache, run, config, resume=resume)
        except (OSError, CacheError, ValueError, RuntimeError) as err:  # RuntimeError: rank 0 stopped first
            fail(f"rank {launched_rank()}: {_one_line(err)}")
        return
    with _progress() as progress:
        task = progress.add_task("training", total=config.epochs)
        printed: list[bool] = []

        def on_fold(fold) -> None:
            if not printed:
                model = FusionModel(config.model)
                console.print(f"model: {count_parameters(model) / 1e6:.2f} M parameters, "
                              f"{flops_per_clip(model) / 1e6:.0f} MFLOP per clip; loss {config.loss}; "
                              f"protocol {config.protocol}", highlight=False)
                printed.append(True)
            actors = f"test actors {fold.test_actors}, validation {fold.val_actors}" if fold.test_actors else \
                "random clips"
            progress.reset(task, total=config.epochs, description=f"{fold.name} ({actors})")

        def on_epoch(epoch: int, metrics: dict) -> None:
            progress.update(task, completed=epoch, description=progress.tasks[0].description.split(" |")[0]
                            + f" | loss {metrics['train/loss']:.3f} val UAR {metrics['val/uar']:.3f}")

        try:
            results = train_run(cache, run, config, resume=resume, on_fold=on_fold, on_epoch=on_epoch)
        except (OSError, CacheError, ValueError) as err:
            progress.stop()
            fail(_one_line(err))
    table = Table(title=f"avemo train {run}")
    for column in ("fold", "best epoch", "validation UAR", "epochs run"):
        table.add_column(column)
    for r in results:
        table.add_row(r.name, str(r.best_epoch), f"{r.best_val_uar:.3f}", str(r.epochs_run))
    console.print(table)


@app.command()
def train(
    cache: Annotated[Path, typer.Argument(help="Feature cache made by avemo extract.")],
    run: Annotated[Path, typer.Option("--run", "--run-dir", help="Run folder for configuration, checkpoints, "
                                      "predictions, report (--run-dir under torchrun, which takes --run for its own).")],
    config: Annotated[Optional[Path], typer.Option(help="TOML or JSON file with training settings.")] = None,
    folds: Annotated[Optional[str], typer.Option(help="Folds to run, e.g. 1,3 (default all).")] = None,
    n_folds: Annotated[Optional[int], typer.Option(help="Number of actor folds (default 6 RAVDESS, 5 CREMA-D).")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Maximum epochs per fold.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=2, help="Clips per batch.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (AdamW).")] = None,
    loss: Annotated[Optional[str], typer.Option(help="emotion-metric (default) or triplet (the seed's).")] = None,
    protocol: Annotated[Optional[str], typer.Option(help="actors (default) or random-clips (the seed's leaky split).")] = None,
    modality: Annotated[Optional[str], typer.Option(help="Ablation: both (default), video or audio.")] = None,
    cross_attention: Annotated[Optional[bool], typer.Option("--cross-attention/--no-cross-attention", help="Ablation: fuse without cross-attention.")] = None,
    dim: Annotated[Optional[int], typer.Option(help="Model width after the input projections (default 256).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last checkpoints.")] = False,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for torch (default: the cores free to this process).")] = None,
) -> None:
    """Train the attention fusion model on cached features, fold by fold (actor-independent)."""
    _use_threads(threads)
    try:
        chosen = [int(k) for k in folds.split(",")] if folds else None
    except ValueError:
        fail(f"--folds {folds!r}: give fold numbers like 1,3")
    settings = _train_config(config, {"folds": chosen, "n_folds": n_folds, "epochs": epochs, "batch_size": batch_size,
                                      "lr": lr, "loss": loss, "protocol": protocol, "modality": modality,
                                      "cross_attention": cross_attention, "dim": dim, "seed": seed})
    _run_training(cache, run, settings, resume)
    if launched_rank() == 0:
        console.print(f"checkpoints and predictions in {run}; next: [bold]avemo evaluate {run}[/]")


def _evaluate(run: Path) -> dict:
    from avemo.reports.report import evaluate_run

    try:
        return evaluate_run(run)
    except (OSError, ValueError, KeyError) as err:
        fail(_one_line(err))


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder written by avemo train.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Score a run on its test actors: per fold and mean ± std; writes report.json/.md and two PNGs."""
    report = _evaluate(run)
    if as_json:
        typer.echo(json.dumps(report, indent=1))
        return
    primary = report["heads"][report["primary_head"]]
    table = Table(title=f"avemo evaluate {run} ({report['primary_head']} predictions)")
    for column in ("fold", "test actors", "accuracy", "UAR", "macro-F1"):
        table.add_column(column)
    for f in primary["per_fold"]:
        table.add_row(f["fold"], ", ".join(map(str, f["test_actors"])), f"{f['accuracy']:.3f}", f"{f['uar']:.3f}",
                      f"{f['macro_f1']:.3f}")
    ms = primary["mean_std"]
    table.add_row("mean ± std", "", *(f"{ms[k]['mean']:.3f} ± {ms[k]['std']:.3f}" for k in ("accuracy", "uar", "macro_f1")))
    console.print(table)
    console.print(f"report: {run / 'report.md'}, {run / 'report.json'}; plots: {run / 'confusion.png'}, "
                  f"{run / 'embedding.png'}", highlight=False)


@app.command()
def predict(
    videos: Annotated[list[Path], typer.Argument(help="Video files (with their soundtrack).")],
    run: Annotated[Path, typer.Option(help="Run folder written by avemo train.")],
    video_weights: Annotated[str, typer.Option(help="The video weights the run's cache was extracted with.")] = "random",
    audio_weights: Annotated[str, typer.Option(help="The audio weights the run's cache was extracted with.")] = "random",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    top: Annotated[int, typer.Option(min=1, max=8, help="Emotions to print per video.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Rank the emotions of new videos with a trained run (decode, backbones, fusion; all folds vote)."""
    from avemo.engines.weights import WeightsError
    from avemo.predict import RunMismatch, predict_files

    warnings.showwarning = _loud_warning
    if not (run / "config.json").is_file():
        fail(f"{run}: no config.json; is this a folder written by avemo train?")
    try:
        results = predict_files(videos, run, video_weights, audio_weights, device)
    except (OSError, WeightsError, RunMismatch, RuntimeError, ValueError, KeyError) as err:
        fail(_one_line(err) if not isinstance(err, KeyError) else f"{run}: config.json lacks {err}; train the run again")
    if as_json:
        typer.echo(json.dumps([{"path": str(r.path), "error": r.error or None,
                                "emotions": [{"emotion": e, "probability": round(p, 4)} for e, p in r.ranked]}
                               for r in results], indent=1))
    else:
        for r in results:
            if r.error:
                console.print(f"[red]{escape(str(r.path))}[/]: {escape(r.error)}", highlight=False)
            else:
                ranked = ", ".join(f"{e} {p:.2f}" for e, p in r.ranked[:top])
                console.print(f"[bold]{escape(str(r.path))}[/]: {ranked}", highlight=False)
    if all(r.error for r in results):
        raise typer.Exit(1)


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Fewer, smaller clips and repeats (116 s of CPU time on 2 AVX2 cores; benchmarks/RESULTS.md).")] = False,
    train_scale: Annotated[bool, typer.Option("--train-scale", help="Only time a full 6-fold avemo train on a RAVDESS-sized cache of random features (minutes).")] = False,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write every figure as JSON to this file.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the Markdown table (bench.md) and chart (bench.png).")] = Path("avemo-bench"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for torch (default: the cores free to this process).")] = None,
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
        console.print(table)
        for limit in section.limits:
            console.print(f"  {escape(limit)}", highlight=False, soft_wrap=True)

    def progress(line: str) -> None:
        console.print(f"[dim]{escape(line)}[/]", highlight=False)

    try:
        report = run_bench(BenchConfig(quick=quick, device=device, workdir=None, train_scale=train_scale),
                           on_section=show, on_progress=progress)
    except RuntimeError as err:
        fail(_one_line(err))
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.md").write_text(report.markdown())
    plot(report, out / "bench.png")
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_json(), indent=1))
    console.print(f"[bold green]done[/]: {out / 'bench.md'}, {out / 'bench.png'}"
                  + (f", {json_path}" if json_path else ""), highlight=False)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Folder for the synthetic dataset, its cache and the run.")] = Path("avemo-demo"),
    actors: Annotated[int, typer.Option(min=4, max=24, help="Synthetic actors (4 folds need at least 4).")] = 8,
    clips_per_actor: Annotated[int, typer.Option(min=8, max=60, help="Clips per actor.")] = 8,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for torch (default: the cores free to this process).")] = None,
) -> None:
    """synth -> extract -> train -> evaluate on the embedded synthetic dataset (about 5 minutes on 2 shared AVX2 cores; benchmarks/RESULTS.md)."""
    _use_threads(threads)
    from avemo.extract import ExtractConfig
    from avemo.pipeline.video import VideoConfig
    from avemo.synth import synthesize

    data, cache, run = workdir / "data", workdir / "cache", workdir / "run"
    with _progress() as progress:
        task = progress.add_task("synthesising", total=actors * clips_per_actor)
        synthesize(data, actors, clips_per_actor, seed=0, on_clip=lambda _: progress.advance(task))
    console.print("[bold]the demo uses random backbone weights[/]: see the README for the pretrained ones")
    # The demo's faces are drawn, not photographed: the face detector would find none in them.
    summary = _extract_with_progress(ExtractConfig(data=data, cache=cache, video=VideoConfig(crop="center")))
    if summary.entries == 0:
        fail(f"no clip of {data} could be extracted", code=1)
    # 32 training clips per fold: a narrow model and short epochs of 2 steps; 60 epochs learn as well as 80
    # did (held-out UAR, benchmarks/RESULTS.md); smaller batches or fewer epochs did not.
    settings = _train_config(None, {"n_folds": 4, "epochs": 60, "batch_size": 16, "lr": 1e-3, "patience": 60,
                                    "dim": 64})
    _run_training(cache, run, settings, resume=(run / "config.json").exists())
    report = _evaluate(run)
    ms = report["heads"][report["primary_head"]]["mean_std"]
    console.print(f"[bold green]done[/]: held-out actors, {len(report['folds'])} folds: accuracy "
                  f"{ms['accuracy']['mean']:.3f} ± {ms['accuracy']['std']:.3f}, UAR {ms['uar']['mean']:.3f} ± "
                  f"{ms['uar']['std']:.3f} (chance {1 / len(report['classes']):.3f})", highlight=False)
    console.print(f"report {run / 'report.md'}; plots {run / 'confusion.png'}, {run / 'embedding.png'}", highlight=False)


def _use_threads(threads: int | None) -> None:
    """Size torch's CPU threads to the free cores (or ``--threads``) before the command's work starts."""
    from avemo.machine import configure_threads

    configure_threads(threads)


class DoctorDevice(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object on stdout.")] = False,
    device: Annotated[DoctorDevice, typer.Option(help="Where the GPU rows run: auto, cpu (GPU rows skipped) or cuda.")] = DoctorDevice.auto,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for torch (default: the cores free to this process).")] = None,
) -> None:
    """Check this machine: versions, CPU features, and every runtime/precision/decoder path against CPU fp32 torch."""
    _use_threads(threads)
    from avemo.doctor import Status, run_doctor

    marks = {Status.ok: "[green]ok[/]", Status.failed: "[bold red]FAILED[/]", Status.unavailable: "[dim]not available[/]"}

    def progress(row) -> None:
        console.print(f"  {escape(row.path)}: {marks[row.status]}", highlight=False)

    try:
        report = run_doctor(device.value, on_row=progress)
    except RuntimeError as err:
        fail(_one_line(err))
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=1))
        raise typer.Exit(report.exit_code)
    out = Console()  # the report is the result: stdout
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
    console.print(f"[bold red]{len(failed)} path(s) FAILED[/]: {escape(', '.join(failed))}" if failed
                  else "[bold green]every available path passed[/]", highlight=False)
    raise typer.Exit(report.exit_code)
