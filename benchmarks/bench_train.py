"""Fusion training: avemo's model and loop against the seed's, at the same batch size, side by side.

    python benchmarks/bench_train.py [--batch 4] [--steps 3]

Each variant runs in its own process (so that peak memory is its own) on random features of the real
shapes (video (6, 2048, 16), audio (6, 512) per clip). Step times are medians over ``--steps`` timed steps
after one warm-up step. Throughput counts training clips (anchors) per second; the seed's step also pushes a
positive and a negative per anchor through the model. Peak memory is the process's peak resident set during
training minus what it held before the first step (features, model).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(name: str, batch: int, steps: int) -> dict:
    torch.manual_seed(0)
    video = torch.randn(64, 6, 2048, 16).half()
    audio = torch.randn(64, 6, 512).half()
    labels = torch.arange(64) % 8
    if name == "seed":
        from avemo.bench.seed_fusion import SeedFusion, seed_step

        model = SeedFusion()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        loss = torch.nn.TripletMarginLoss(margin=1.0)

        def step(i: int) -> None:
            idx = torch.arange(i * batch, (i + 1) * batch) % 56
            pick = lambda j: (video[j].float(), audio[j].float())  # noqa: E731
            seed_step(model, optimizer, loss, pick(idx), pick(idx + 8), pick(idx + 1))
    else:
        from avemo.fusion.losses import EmotionMetricLoss
        from avemo.fusion.model import FusionConfig, FusionModel

        model = FusionModel(FusionConfig())
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        loss = EmotionMetricLoss()

        def step(i: int) -> None:
            idx = torch.arange(i * batch, (i + 1) * batch) % 64
            embeddings, logits = model(video[idx], audio[idx])
            optimizer.zero_grad()
            loss(embeddings, logits, labels[idx])["loss"].backward()
            optimizer.step()

    model.train()
    before = _rss_mb()
    step(0)  # warm-up (allocations, kernels)
    times = []
    for i in range(1, steps + 1):
        start = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    return {"clips_per_s": batch / step_s, "step_s": step_s, "peak_mb": _rss_mb() - before,
            "parameters": sum(p.numel() for p in model.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--variant", choices=["seed", "avemo"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.variant:  # child process
        print(json.dumps(run_variant(args.variant, args.batch, args.steps)))
        return
    med = {}
    for name in ("seed", "avemo"):
        out = subprocess.run([sys.executable, __file__, "--variant", name, "--batch", str(args.batch),
                              "--steps", str(args.steps)], check=True, capture_output=True, text=True)
        med[name] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"# Fusion training, batch {args.batch}, median of {args.steps} steps after a warm-up, "
          f"{torch.get_num_threads()} threads, {date.today()}\n")
    print("| loop | parameters | s/step | clips/s | peak memory of training, MB |")
    print("|---|---|---|---|---|")
    for name, label in [("seed", "seed (3 forwards per triplet, 2048x2048 channel scores)"),
                        ("avemo", "avemo (1 forward, in-batch mining, XCiT channel attention)")]:
        m = med[name]
        print(f"| {label} | {m['parameters'] / 1e6:.1f} M | {m['step_s']:.3f} | {m['clips_per_s']:.2f} | "
              f"{m['peak_mb']:.0f} |")
    print(f"\nthroughput avemo/seed: {med['avemo']['clips_per_s'] / med['seed']['clips_per_s']:.0f}x; "
          f"peak memory seed/avemo: {med['seed']['peak_mb'] / max(med['avemo']['peak_mb'], 1):.0f}x")
    if args.json:
        args.json.write_text(json.dumps(med, indent=2))


if __name__ == "__main__":
    main()
