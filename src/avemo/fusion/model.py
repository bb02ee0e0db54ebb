"""The attention fusion model of Mocanu, Tapu & Zaharia (2023), on cached backbone features.

Per clip it reads video features (T snippets, C channels, S spatial positions of the backbone's last map)
and audio features (T segments, A channels); the defaults in :class:`FusionConfig` are replaced by the
cache's own shapes when a run starts. Data flow::

    every input channel is first standardised by the mean and deviation of the fold's training clips
    video (T, C, S) -> project to d -> spatial attention over S -> channel attention over d
                    -> attention pooling over S -> temporal attention over the T snippets   -> (T, d)
    audio (T, A)    -> project to d -> temporal attention over the T segments              -> (T, d)
    cross-attention: video tokens attend to audio tokens and audio to video (softmax over the attended axis)
    mean over time, concatenate -> MLP -> embedding (L2-normalised) and classifier logits

Every attention goes through ``torch.nn.functional.scaled_dot_product_attention``; blocks are pre-norm
transformer blocks (LayerNorm, attention, residual, MLP, residual, dropout).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from avemo.errors import AvemoError
from avemo.fusion.config import FusionConfig


class InputShapeError(AvemoError, ValueError):
    """Features of another shape than the model was built for (another backbone or extraction setting).

    Also a ``ValueError``, so code that catches bad input that way still catches it.
    """


class Standardize(nn.Module):
    """Per-channel ``(x - mean) / std`` with statistics fitted once on training features and saved as buffers.

    Backbone features are ReLU outputs: each channel has its own offset and scale, and the input projection,
    initialised for inputs of unit scale, would otherwise see mostly the offsets and the largest channels (the
    spread measured on the synthetic data, and what standardising gained there: benchmarks/RESULTS.md,
    "Timeline agreement"). Identity until ``fit`` is called, which is what a model trained without it saw.
    """

    def __init__(self, channels: int, channel_axis: int, ndim: int) -> None:
        super().__init__()
        shape = [1] * ndim
        shape[channel_axis] = channels
        self.channel_axis = channel_axis
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))

    @torch.no_grad()
    def fit(self, features: torch.Tensor, index: torch.Tensor, chunk: int = 64) -> None:
        """Statistics of ``features[index]`` over every axis but the channels, gathered in float64 chunks: the
        training clips of a RAVDESS-sized cache are never copied whole."""
        axes = [a for a in range(features.dim()) if a != self.channel_axis]
        total = torch.zeros(self.mean.shape, dtype=torch.float64)
        squares = torch.zeros_like(total)
        for rows in index.split(chunk):
            part = features[rows].double()
            total += part.sum(dim=axes, keepdim=True)
            squares += part.square().sum(dim=axes, keepdim=True)
        count = len(index) * features[:1].numel() // features.shape[self.channel_axis]
        mean = total / count
        std = (squares / count - mean.square()).clamp_min(0).sqrt()
        # a channel that never varies (dead ReLU) stays near zero rather than being blown up
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-3 * float(std.mean()) + 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MultiHeadAttention(nn.Module):
    """Queries from ``x`` attend to ``context`` (itself for self-attention) with SDPA."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, d) -> (B, h, L, d/h)
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        q = self._split(self.q(x))
        k, v = (self._split(t) for t in self.kv(context).chunk(2, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).flatten(2))


class ChannelAttention(nn.Module):
    """Channels attend to channels: cross-covariance attention (El-Nouby et al., XCiT, 2021).

    The seed scored every pair of the backbone's C channels per snippet (C x C, with C = 2048 for a 3D
    ResNet). Here the channels are first projected to ``dim`` and split into ``heads`` groups; each head
    scores its (dim/heads) x (dim/heads) channel pairs over the S spatial positions, so a snippet costs
    ``dim**2 / heads`` scores, linear in S. Queries and keys are L2-normalised along the
    positions (cosine similarities, stable for any S) with a learned temperature per head, as XCiT does.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, S, d)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).permute(0, 2, 3, 1) for t in self.qkv(x).chunk(3, dim=-1))
        q = F.normalize(q, dim=-1) * self.temperature  # (B, h, d/h, S): channels are the sequence axis
        k = F.normalize(k, dim=-1)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, scale=1.0)
        return self.out(y.permute(0, 3, 1, 2).flatten(2))


class Block(nn.Module):
    """Pre-norm residual block: attention (self, cross or channel), then an MLP."""

    def __init__(self, dim: int, heads: int, dropout: float, kind: Literal["self", "cross", "channel"]) -> None:
        super().__init__()
        self.kind = kind
        self.norm1 = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim) if kind == "cross" else None
        self.attn = ChannelAttention(dim, heads, dropout) if kind == "channel" else MultiHeadAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm1(x)
        if self.kind == "cross":
            h = self.attn(h, self.norm_context(context))
        else:
            h = self.attn(h)
        x = x + self.drop(h)
        return x + self.drop(self.mlp(self.norm2(x)))


class AttentionPool(nn.Module):
    """A learned query attends over the tokens: (B, L, d) -> (B, d)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        self.norm = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads, 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.query.expand(x.shape[0], -1, -1), self.norm(x)).squeeze(1)


class VideoBranch(nn.Module):
    """(B, T, C, S) -> (B, T, d): spatial, channel, pooling and temporal attention."""

    def __init__(self, c: FusionConfig) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(c.video_channels, c.dim), nn.LayerNorm(c.dim))
        self.spatial_pos = nn.Parameter(torch.zeros(1, c.video_positions, c.dim))
        self.spatial = Block(c.dim, c.heads, c.dropout, "self")
        self.channel = Block(c.dim, c.heads, c.dropout, "channel")
        self.pool = AttentionPool(c.dim, c.heads)
        self.temporal_pos = nn.Parameter(torch.zeros(1, c.snippets, c.dim))
        self.temporal = Block(c.dim, c.heads, c.dropout, "self")

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        x = self.project(video.transpose(2, 3)).flatten(0, 1)  # (B*T, S, d)
        x = self.channel(self.spatial(x + self.spatial_pos))
        x = self.pool(x).unflatten(0, (b, t))
        return self.temporal(x + self.temporal_pos)


class AudioBranch(nn.Module):
    """(B, T, A) -> (B, T, d): temporal attention over the segments."""

    def __init__(self, c: FusionConfig) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(c.audio_channels, c.dim), nn.LayerNorm(c.dim))
        self.temporal_pos = nn.Parameter(torch.zeros(1, c.snippets, c.dim))
        self.temporal = Block(c.dim, c.heads, c.dropout, "self")

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.temporal(self.project(audio) + self.temporal_pos)


class FusionModel(nn.Module):
    """Returns ``(embedding, logits)``: an L2-normalised embedding for the metric loss and class logits."""

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = c = config
        self.video = VideoBranch(c) if c.modality in ("both", "video") else None
        self.audio = AudioBranch(c) if c.modality in ("both", "audio") else None
        self.video_norm = Standardize(c.video_channels, 2, 4) if self.video is not None else None  # (B, T, C, S)
        self.audio_norm = Standardize(c.audio_channels, 2, 3) if self.audio is not None else None  # (B, T, C)
        fuse = c.modality == "both" and c.cross_attention
        self.video_from_audio = Block(c.dim, c.heads, c.dropout, "cross") if fuse else None
        self.audio_from_video = Block(c.dim, c.heads, c.dropout, "cross") if fuse else None
        width = c.dim * (2 if c.modality == "both" else 1)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, c.dim), nn.GELU(), nn.Dropout(c.dropout),
                                  nn.Linear(c.dim, c.embed_dim))
        self.classifier = nn.Linear(c.embed_dim, c.num_classes)
        for p in (*(m.spatial_pos for m in [self.video] if m), *(m.temporal_pos for m in (self.video, self.audio) if m)):
            nn.init.trunc_normal_(p, std=0.02)

    def fit_inputs(self, video: torch.Tensor, audio: torch.Tensor, index: torch.Tensor) -> None:
        """Fit the input standardisation to the features of the training clips ``index`` (before training)."""
        for norm, features in ((self.video_norm, video), (self.audio_norm, audio)):
            if norm is not None:
                norm.fit(features, index)

    def check_inputs(self, video: torch.Tensor, audio: torch.Tensor) -> None:
        """Raise :class:`InputShapeError` unless the features of the modalities the model reads fit it.

        Checked here, not left to the first matrix product: torch would name two inner matrix shapes rather
        than the features and the settings that made them.
        """
        c = self.config
        wanted = {"video": ((c.snippets, c.video_channels, c.video_positions), "snippets, channels, positions"),
                  "audio": ((c.snippets, c.audio_channels), "segments, channels")}
        for name, x in (("video", video), ("audio", audio)):
            shape, axes = wanted[name]
            if getattr(self, name) is not None and tuple(x.shape[1:]) != shape:
                raise InputShapeError(f"{name} features of shape {tuple(x.shape)}: this model reads (clips, "
                                      f"{', '.join(map(str, shape))}) as (clips, {axes}); give features extracted "
                                      "with the settings its run was trained on")

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_inputs(video, audio)
        v = self.video(self.video_norm(video.float())) if self.video is not None else None
        a = self.audio(self.audio_norm(audio.float())) if self.audio is not None else None
        if self.video_from_audio is not None:
            v, a = self.video_from_audio(v, a), self.audio_from_video(a, v)
        pooled = torch.cat([x.mean(dim=1) for x in (v, a) if x is not None], dim=-1)
        z = self.head(pooled)
        return F.normalize(z, dim=-1), self.classifier(z)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def flops_per_clip(model: FusionModel) -> int:
    """Floating-point operations of one forward pass for one clip (counted by PyTorch's FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    c = model.config
    video = torch.zeros(1, c.snippets, c.video_channels, c.video_positions)
    audio = torch.zeros(1, c.snippets, c.audio_channels)
    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter:  # (its module tracker needs autograd on)
        model(video, audio)
    model.train(was_training)
    return counter.get_total_flops()
