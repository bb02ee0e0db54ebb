"""``avemo export``: both backbones to ONNX graphs (and TensorRT engines) that extract runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avemo.choices import ExportPrecision, VideoNormalization
from avemo.cli.extract import WEIGHTS_AUDIO, WEIGHTS_VIDEO
from avemo.cli.shared import busy, command, fail, note, out


@command
def export(
    engines: Annotated[Path, typer.Option(help="Folder to write the ONNX graphs and their manifests into.")],
    video_weights: Annotated[str, typer.Option(help=WEIGHTS_VIDEO)] = "random",
    video_arch: Annotated[str, typer.Option(help="3D ResNet depth matching the checkpoint.")] = "r3d101",
    video_normalization: Annotated[VideoNormalization, typer.Option(help="Input normalisation; auto reads the release.")] = VideoNormalization.auto,
    audio_weights: Annotated[str, typer.Option(help=WEIGHTS_AUDIO)] = "random",
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
    with busy("exporting both backbones"):
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
