"""Backbone inputs of one batch of clips: stacked from the PyAV workers' tensors, or decoded by DALI.

A clip DALI cannot decode fails alone: the batch is retried clip by clip on a fresh pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from avemo.choices import Decoder
from avemo.pipeline.dali import DaliFrames, dali_installed
from avemo.pipeline.decode import ClipError
from avemo.pipeline.prepare import EncodedClip, FailedClip, PreparedClip, audio_segments
from avemo.spec import AudioConfig
from avemo.errors import SetupError


@dataclass
class InputBatch:
    """Backbone inputs of the clips of one batch that are still usable, and those that failed on the way."""

    clips: list[PreparedClip | EncodedClip]
    video: torch.Tensor  # (B * S, 3, F, size, size) uint8
    audio: torch.Tensor  # (B * S, freq_bins, segment_frames)
    failed: list[FailedClip] = field(default_factory=list)


def pyav_inputs(clips: list[PreparedClip]) -> InputBatch:
    """Inputs of clips the PyAV workers already decoded and cut."""
    return InputBatch(clips, torch.cat([c.video for c in clips]), torch.cat([c.audio for c in clips]))


def resolve_decoder(name: str, device: torch.device) -> str:
    """``pyav``, ``dali-gpu`` or ``dali-cpu`` for ``--decoder name`` on ``device``."""
    if name not in [d.value for d in Decoder]:
        raise SetupError(f"unknown decoder {name!r}; choose from {', '.join(d.value for d in Decoder)}")
    if name == Decoder.auto:
        return "dali-gpu" if device.type == "cuda" and dali_installed() else "pyav"
    if name == Decoder.dali:
        if not dali_installed():
            raise SetupError("--decoder dali: DALI is not installed; pip install 'avemo[gpu]' (or 'avemo[dali]')")
        return "dali-gpu" if device.type == "cuda" else "dali-cpu"
    return Decoder.pyav.value


def dali_inputs(frames: DaliFrames, clips: list[EncodedClip], audio: AudioConfig, device: torch.device) -> InputBatch:
    """Inputs of clips whose frames DALI decodes and whose spectrograms torch computes on ``device``.

    A clip DALI cannot decode fails alone: the batch is retried clip by clip on a fresh pipeline.
    """
    failed, kept, segs = [], [], []
    for clip in clips:
        try:
            segs.append(audio_segments(clip.samples.to(device, non_blocking=True), clip.centres, audio, clip.record.path))
            kept.append(clip)
        except ClipError as err:
            failed.append(FailedClip(clip.record, err))
    try:
        snippets = frames([c.request for c in kept]) if kept else None
    except torch.cuda.OutOfMemoryError:
        raise  # not the clips' fault: retrying them one by one would blame them
    except RuntimeError:  # DALI's errors are RuntimeErrors: find the clip that caused it
        frames.reset()
        ok, parts, ok_segs = [], [], []
        for clip, seg in zip(kept, segs):
            try:
                parts.append(frames([clip.request]))
                ok.append(clip)
                ok_segs.append(seg)
            except torch.cuda.OutOfMemoryError:
                raise
            except RuntimeError as err:
                frames.reset()
                failed.append(FailedClip(clip.record, ClipError(clip.record.path, "DALI cannot decode the video",
                                                                f"{str(err).splitlines()[0][:200]}; try --decoder pyav")))
        kept, segs, snippets = ok, ok_segs, (torch.cat(parts) if parts else None)
    if snippets is None:
        return InputBatch([], torch.empty(0), torch.empty(0), failed)
    return InputBatch(kept, snippets.flatten(0, 1), torch.cat(segs), failed)
