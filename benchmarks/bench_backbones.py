"""Backbone throughput per runtime and precision on this machine: torch eager vs ONNX Runtime.

    python benchmarks/bench_backbones.py [--batches 6,12] [--repeats 3]

Full-size 3D ResNet-101 (16 x 112 x 112 snippets) and ResNet-18 (256 x 96 spectrogram segments) with random
weights; a clip is 6 snippets + 6 segments. Medians over repeats after a warm-up; every row side by side in
one run, as a ratio to torch eager fp32. Physical limits are printed beside the figures: 27.8 GFLOP per video
snippet (Hara's r3d101 at 112), ResNet-18 at 256 x 96 is about 0.9 GFLOP.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

import torch

from avemo.engines.backbones import BackboneConfig, build_audio, build_video, describe
from avemo.engines.onnxruntime import OnnxRuntimeBackend
from avemo.engines.runtime import TorchBackend
from avemo.export.onnx import ExportConfig, export_backbones

VIDEO_GFLOP = 27.8


def clip_seconds(backend, clips: int, repeats: int) -> float:
    snippets = torch.randint(0, 256, (6 * clips, 3, 16, 112, 112), dtype=torch.uint8)
    segments = torch.randn(6 * clips, 256, 96)
    backend.video(snippets[:6]), backend.audio(segments[:6])  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        backend.video(snippets)
        backend.audio(segments)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,2", help="clips per call (x6 snippets)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    config = BackboneConfig()
    video, video_info = build_video(config)
    audio, audio_info = build_audio(config)
    description = describe(config, video, video_info, audio_info)
    engines = Path(tempfile.mkdtemp(prefix="avemo-engines-"))
    for precision in ("fp32", "fp16"):
        export_backbones(ExportConfig(engines=engines, backbones=config, precision=precision, max_batch=64))
    cpu = torch.device("cpu")
    rows = [("torch eager fp32 (channels-last)", TorchBackend(video, audio, cpu)),
            ("onnxruntime fp32", OnnxRuntimeBackend(engines, description, "fp32", cpu)),
            ("onnxruntime fp16 graph", OnnxRuntimeBackend(engines, description, "fp16", cpu))]
    print(f"# Backbones on the CPU, {torch.get_num_threads()} threads, medians of {args.repeats}, {date.today()}\n")
    print("| runtime | clips per call | s/clip | clips/s | video GFLOP/s | vs torch fp32 |")
    print("|---|---|---|---|---|---|")
    for batch in (int(b) for b in args.batches.split(",")):
        base = None
        for name, backend in rows:
            seconds = clip_seconds(backend, batch, args.repeats)
            base = base or seconds
            print(f"| {name} | {batch} | {seconds:.2f} | {1 / seconds:.2f} | {6 * VIDEO_GFLOP / seconds:.0f} | "
                  f"{base / seconds:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
