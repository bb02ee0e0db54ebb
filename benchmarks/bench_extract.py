"""CPU feature extraction: avemo against the seed's approach on the same synthetic 720p clips.

    python benchmarks/bench_extract.py [--clips 3] [--repeats 3] [--json out.json]

Per clip, medians over repeats: decoding, backbones and their sum, for
  seed   per-frame seeks, full frame squashed to 256 x 256, r3d101 in train mode with autograd, one clip at a time;
  avemo  one PyAV pass scaled on the fly, 112 x 112 centre crop, eval + inference mode, clips batched;
and avemo's end-to-end ``run_extract`` (decoding in a worker process overlapping the backbones; the
one-off set-up of building the models is excluded, as it does not grow with the dataset).
Both use random r3d101 / ResNet-18 weights (speed does not depend on the values) and the same audio path.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from avemo.bench.seed_extract import seed_backbone, seek_frames  # noqa: E402

from avemo.engines.backbones import BackboneConfig, build_audio, build_video  # noqa: E402
from avemo.engines.runtime import create_backend  # noqa: E402
from avemo.extract import ExtractConfig, run_extract  # noqa: E402
from avemo.pipeline.audio import AudioConfig  # noqa: E402
from avemo.pipeline.discover import discover  # noqa: E402
from avemo.pipeline.prepare import prepare_clip  # noqa: E402
from avemo.pipeline.video import VideoConfig  # noqa: E402
from avemo.synth import SynthConfig, synthesize  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="RANDOM .* WEIGHTS")
    work = Path(tempfile.mkdtemp(prefix="avemo-bench-"))
    synthesize(work / "data", actors=1, clips_per_actor=args.clips, seed=3,
               config=SynthConfig(width=1280, height=720))
    clips = discover(work / "data").clips
    seed_net = build_video(BackboneConfig())[0].net  # its own copy: the backend below goes channels-last
    audio_net, _ = build_audio(BackboneConfig())
    backend = create_backend("torch", build_video(BackboneConfig())[0], audio_net, torch.device("cpu"))
    vcfg, acfg = VideoConfig(), AudioConfig()

    rows: dict[str, dict[str, list[float]]] = {"seed": {"decode": [], "backbone": []},
                                               "avemo": {"decode": [], "backbone": []}}
    for _ in range(args.repeats):
        for clip in clips:
            prepared, t_prep = timed(lambda: prepare_clip(clip, vcfg, acfg))
            frames, t_seek = timed(lambda: seek_frames(clip.path))
            rows["seed"]["decode"].append(t_seek + t_prep)  # the audio part of t_prep: same path for both
            _, t_seed = timed(lambda: (seed_backbone(seed_net, frames), backend.audio(prepared.audio)))
            rows["seed"]["backbone"].append(t_seed)
            rows["avemo"]["decode"].append(t_prep)
        batch = [prepare_clip(c, vcfg, acfg) for c in clips]
        _, t_batch = timed(lambda: (backend.video(torch.cat([c.video for c in batch])),
                                    backend.audio(torch.cat([c.audio for c in batch]))))
        rows["avemo"]["backbone"].extend([t_batch / len(clips)] * len(clips))
    ends = []
    for r in range(args.repeats):
        summary = run_extract(ExtractConfig(data=work / "data", cache=work / f"cache{r}", batch_size=len(clips)))
        ends.append(1 / summary.clips_per_second)

    result = {name: {k: statistics.median(v) for k, v in parts.items()} for name, parts in rows.items()}
    for parts in result.values():
        parts["total"] = parts["decode"] + parts["backbone"]
    result["avemo_end_to_end"] = {"total": statistics.median(ends)}
    seed_total = result["seed"]["total"]
    print(f"# CPU extraction, {args.clips} synthetic 1280x720 clips, medians of {args.repeats} repeats, "
          f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {date.today()}\n")
    print("| approach | decode s/clip | backbones s/clip | total s/clip | clips/s | speed-up vs seed |")
    print("|---|---|---|---|---|---|")
    for name, label in [("seed", "seed (seek per frame, 256x256 squash, train mode + autograd, 1 clip)"),
                        ("avemo", "avemo stages (one pass, 112 crop, eval + inference mode, batched)"),
                        ("avemo_end_to_end", "avemo extract end to end (decode worker overlaps backbones)")]:
        r = result[name]
        dec = f"{r['decode']:.2f}" if "decode" in r else "overlapped"
        bb = f"{r['backbone']:.2f}" if "backbone" in r else "overlapped"
        print(f"| {label} | {dec} | {bb} | {r['total']:.2f} | {1 / r['total']:.2f} | {seed_total / r['total']:.1f}x |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
