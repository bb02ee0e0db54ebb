"""The cost structure of the seed's fusion model and loop, rebuilt for a side-by-side measurement.

What it reproduces (from the seed's ``attention_model.py`` and ``train.py``): spatial attention with
2048-wide query/key/value projections, channel attention whose scores are a 2048 x 2048 matrix per head and
snippet, mean pooling, temporal attention projecting 2048 -> 512, audio temporal attention, a cross-attention
and a linear layer to a softmax; trained with a triplet margin loss on the softmax outputs, with three
separate forward passes (anchor, positive, negative) per step. A baseline to measure against, not used by
avemo.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Explicit softmax(q k^T / sqrt(d)) v: the score matrix is materialised, as in the seed."""
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    return scores.softmax(dim=-1) @ v


class SeedMultiHead(nn.Module):
    def __init__(self, width: int, heads: int, out: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = (nn.Linear(width, width, bias=False) for _ in range(3))
        self.o = nn.Linear(width, out or width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., L, width)
        split = lambda t: t.unflatten(-1, (self.heads, -1)).transpose(-3, -2)  # noqa: E731
        y = _attend(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        return self.o(y.transpose(-3, -2).flatten(-2))


class SeedFusion(nn.Module):
    """(B, 6, 2048, S) video and (B, 6, 512) audio -> 8 softmax probabilities."""

    def __init__(self, positions: int = 16, heads: int = 8) -> None:
        super().__init__()
        self.spatial = SeedMultiHead(2048, heads)  # tokens: the S positions, width 2048
        self.channel = SeedMultiHead(positions, heads)  # tokens: the 2048 channels -> 2048 x 2048 scores
        self.video_temporal = SeedMultiHead(2048, heads, out=512)
        self.audio_temporal = SeedMultiHead(512, heads)
        self.cross = nn.Linear(512, 512, bias=False)
        self.fc = nn.Linear(2 * 6 * 512, 8)

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        v = self.spatial(video.transpose(2, 3))  # (B, 6, S, 2048)
        v = self.channel(v.transpose(2, 3))  # (B, 6, 2048, S)
        v = self.video_temporal(v.mean(dim=3))  # (B, 6, 512)
        a = self.audio_temporal(audio)
        corr = self.cross(a) @ v.transpose(1, 2)
        dv = torch.tanh(F.softmax(corr.transpose(1, 2), dim=1) @ v + v)
        da = torch.tanh(F.softmax(corr, dim=1) @ a + a)
        return F.softmax(self.fc(torch.cat([dv, da], dim=-1).flatten(1)), dim=-1)


def seed_step(model: SeedFusion, optimizer: torch.optim.Optimizer, loss: nn.TripletMarginLoss,
              anchor: tuple[torch.Tensor, torch.Tensor], positive: tuple[torch.Tensor, torch.Tensor],
              negative: tuple[torch.Tensor, torch.Tensor]) -> float:
    """One optimisation step the seed's way: three forward passes, triplet loss on softmax outputs."""
    out = loss(model(*anchor), model(*positive), model(*negative))
    optimizer.zero_grad()
    out.backward()
    optimizer.step()
    return float(out.detach())
