"""``avemo extract``: a dataset's clips into a feature cache, with progress, the files left out, and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional

import typer
from rich.markup import escape
from rich.table import Table

from avemo.choices import BackendName, Crop, Dataset, Decoder, DeviceName, Dtype, Precision, VideoNormalization
from avemo.distributed import launched_rank
from avemo.cli.shared import SHOW_PER_REASON, Reporter, command, err, fail, out, use_threads

if TYPE_CHECKING:
    from avemo.extraction import ExtractSummary
    from avemo.pipeline.clips import Skipped

WEIGHTS_VIDEO = "Hara et al. 3D ResNet checkpoint (2017 or 2020 release), or 'random'."
WEIGHTS_AUDIO = "torchvision resnet18-f37072fd.pth, 'imagenet' (downloads), or 'random'."


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
    video_weights: Annotated[str, typer.Option(help=WEIGHTS_VIDEO)] = "random",
    video_arch: Annotated[str, typer.Option(help="3D ResNet depth matching the checkpoint: r3d10 ... r3d200.")] = "r3d101",
    video_normalization: Annotated[VideoNormalization, typer.Option(help="Input normalisation; auto reads the release "
                                                                         "from the checkpoint.")] = VideoNormalization.auto,
    audio_weights: Annotated[str, typer.Option(help=WEIGHTS_AUDIO)] = "random",
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
    workers: Annotated[Optional[int], typer.Option(min=0, help="Decoding processes (0 decodes in the main process).",
                                                   show_default="0 on a CPU of 2 cores or fewer (the backbones "
                                                                "use both), else 1")] = None,
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
    use_threads(threads)
    from avemo import api

    if cache is None:
        fail("--cache DIR is required: the folder the features go into")
    summary = extract_and_show(cache, lambda on_start, on_clip: api.extract(
        data, cache, dataset=dataset.value, manifest=manifest, channels=channels, speaker_pattern=speaker_pattern,
        video_weights=video_weights, video_arch=video_arch, video_normalization=video_normalization.value,
        audio_weights=audio_weights, backend=backend.value, engines=engines, precision=precision.value,
        compile=compile, cuda_graphs=cuda_graphs, device=device.value, decoder=decoder.value, batch_size=batch_size,
        workers=workers, size=size, crop=crop.value, landmarks=landmarks, landmark_confidence=landmark_confidence,
        dtype=dtype.value, on_start=on_start, on_clip=on_clip))
    if launched_rank() == 0 and summary.entries == 0:  # rank 0 alone holds the merged count of all ranks
        fail(f"no usable clip in {manifest or data}; check the folder and the file names", code=1)


def extract_and_show(cache: Path, extraction: Callable[[Callable, Callable], ExtractSummary]) -> ExtractSummary:
    """Run ``extraction(on_start, on_clip)`` with progress, then print the files skipped or failed (stderr) and a
    summary (stdout)."""
    from avemo.extraction import NothingToExtract

    with Reporter("extracting", None, "clips") as progress:
        def started(todo: int, summary: ExtractSummary) -> None:
            progress.set_total(todo)
            progress.line(f"{summary.backbones}; backend {summary.backend} on {summary.device}, decoder "
                          f"{summary.decoder}; {summary.found} clips found, {summary.cached_before} already cached, "
                          f"{todo} to extract; cache {cache} (fingerprint {summary.spec.fingerprint})")

        try:
            summary = extraction(started, lambda _: progress.advance())
        except NothingToExtract as error:
            report_skips("skipped", error.skipped)
            fail(str(error), code=1)
    report_skips("skipped", summary.skipped)
    report_skips("failed", summary.failed)
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
    crop = summary.spec.video.crop if summary.spec is not None else None
    table = Table(title="avemo extract", show_header=False)
    rows = [
        ("clips found", summary.found), ("already cached", summary.cached_before),
        *([("processes (torchrun ranks)", summary.ranks)] if summary.ranks > 1 else []),
        ("extracted now", summary.written), ("failed", len(summary.failed)),
        *([("damaged entries extracted again", len(summary.damaged))] if summary.damaged else []),
        ("skipped at discovery", len(summary.skipped)), ("entries in cache", summary.entries),
        *([("no face found (centre crop used)", len(summary.no_face))] if crop == Crop.face else []),
        *([("no usable landmark file (detector or centre used)", len(summary.no_landmarks))]
          if crop == Crop.landmarks else []),
        ("time", f"{summary.seconds:.1f} s, of which set-up {summary.setup_seconds:.1f} s "
                 f"({summary.clips_per_second:.2f} clips/s)"),
        ("decoding (summed over clips)", f"{summary.decode_seconds:.1f} s"),
        ("backbones", f"{summary.backbone_seconds:.1f} s on {summary.backend}/{summary.device}"),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    out.print(table)
    return summary


def report_skips(title: str, items: list[Skipped]) -> None:
    by_reason: dict[str, list] = {}
    for item in items:
        by_reason.setdefault(item.reason, []).append(item)
    for reason, group in sorted(by_reason.items()):
        err.print(f"[yellow]{title}[/] {escape(reason)}: {len(group)}", highlight=False)
        for item in group[:SHOW_PER_REASON]:
            err.print(f"  {escape(item.line())}", highlight=False, soft_wrap=True)
        if len(group) > SHOW_PER_REASON:
            err.print(f"  ... and {len(group) - SHOW_PER_REASON} more (all listed in the cache's report.json)")
