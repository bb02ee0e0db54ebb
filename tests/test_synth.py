"""The synthetic dataset: RAVDESS names and formats, determinism, and emotion visible in both modalities."""

import subprocess
import sys

import av
import numpy as np
import pytest
import torch
from avemo.emotions import EMOTIONS
from avemo.pipeline.decode import decode_clip
from avemo.pipeline.discover import discover
from avemo.pipeline.prepare import prepare_clip
from avemo.pipeline.ravdess import parse_name, record_from_name
from avemo.spec import AudioConfig, VideoConfig
from avemo.synth import Actor, SynthConfig, clip_plan, render_clip, synthesize


def test_clip_plan_covers_every_emotion_first_and_never_strong_neutral():
    plan = clip_plan(60)
    assert [emo for emo, *_ in plan[:8]] == list(range(1, 9))
    assert len(set(plan)) == 60 and (1, 2) not in {(emo, inten) for emo, inten, *_ in plan}
    with pytest.raises(ValueError):
        clip_plan(61)


def test_cli_writes_ravdess_named_h264_aac_clips(tmp_path):
    subprocess.run([sys.executable, "-m", "avemo", "synth", str(tmp_path), "--actors", "2", "--clips-per-actor", "3",
                    "--seed", "5", "--width", "96", "--height", "64"], check=True, capture_output=True)
    paths = sorted(tmp_path.rglob("*.mp4"))
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "Actor_01/01-01-01-01-01-01-01.mp4", "Actor_01/01-01-02-01-01-01-01.mp4", "Actor_01/01-01-03-01-01-01-01.mp4",
        "Actor_02/01-01-01-01-01-01-02.mp4", "Actor_02/01-01-02-01-01-01-02.mp4", "Actor_02/01-01-03-01-01-01-02.mp4"]
    for path in paths:
        assert parse_name(path.stem).modality == 1
        with av.open(str(path)) as container:
            video, audio = container.streams.video[0], container.streams.audio[0]
            assert video.codec_context.name == "h264" and (video.width, video.height) == (96, 64)
            assert audio.codec_context.name == "aac" and audio.rate == 48000


def test_the_same_seed_renders_the_same_clip():
    config = SynthConfig(width=64, height=48)

    def render(seed):
        return render_clip(Actor.draw(3, seed), "fearful", 2, 1, np.random.default_rng([seed, 3, 6]), config)

    (frames_a, times_a, audio_a), (frames_b, times_b, audio_b) = render(7), render(7)
    assert all(np.array_equal(a, b) for a, b in zip(frames_a, frames_b)) and len(frames_a) == len(frames_b)
    assert np.array_equal(times_a, times_b) and np.array_equal(audio_a, audio_b)
    frames_c, _, audio_c = render(8)
    assert not np.array_equal(frames_a[0], frames_c[0]) and not np.array_equal(audio_a[:1000], audio_c[:1000])


def test_a_different_seed_gives_different_actors(tmp_path):
    first = synthesize(tmp_path / "s1", actors=1, clips_per_actor=1, seed=1, config=SynthConfig(width=64, height=48))
    second = synthesize(tmp_path / "s2", actors=1, clips_per_actor=1, seed=2, config=SynthConfig(width=64, height=48))
    config = VideoConfig(size=32, resize=32)
    a = prepare_clip(record_from_name(first[0], parse_name(first[0].stem)), config, AudioConfig())
    b = prepare_clip(record_from_name(second[0], parse_name(second[0].stem)), config, AudioConfig())
    assert (a.video.float() - b.video.float()).abs().mean() > 5


def test_variable_frame_rate_clips_go_through_the_pipeline(tmp_path):
    (path,) = synthesize(tmp_path, actors=1, clips_per_actor=1, config=SynthConfig(variable_frame_rate=True))
    steps = np.diff(decode_clip(path, VideoConfig(), 16000).times)
    assert steps.max() > 1.3 * steps.min()
    prepared = prepare_clip(record_from_name(path, parse_name(path.stem)), VideoConfig(), AudioConfig())
    assert prepared.video.shape == (6, 3, 16, 112, 112) and prepared.audio.shape == (6, 256, 96)


def _video_descriptor(video: torch.Tensor) -> np.ndarray:
    """Position-free cues: colour histogram, mouth / eye-white / dark pixel fractions, motion."""
    x = video.float().permute(0, 2, 3, 4, 1).reshape(-1, video.shape[-1] * video.shape[-2], 3)
    hist = torch.stack([torch.histc(x[..., c], bins=16, min=0, max=255) for c in range(3)]).flatten() / x[..., 0].numel()
    mouth = ((x - torch.tensor([110.0, 20, 30])).norm(dim=-1) < 40).float().mean(1)
    white = (x.min(-1).values > 235).float().mean(1)
    dark = (x.max(-1).values < 70).float().mean(1)
    frames = video.float().flatten(3)
    motion = (frames[:, :, 1:] - frames[:, :, :-1]).abs().mean()
    return torch.cat([hist, torch.stack([mouth.mean(), mouth.std(), white.mean(), dark.mean(), motion])]).numpy()


def _audio_descriptor(audio: torch.Tensor) -> np.ndarray:
    """Mean spectrum, its variation in time, and spectral flux."""
    flux = (audio[:, :, 1:] - audio[:, :, :-1]).abs().mean(dim=(0, 2))
    return torch.cat([audio.mean(dim=(0, 2)), audio.std(dim=2).mean(dim=0), flux]).numpy()


def _descriptors(synth_root):
    """Per-clip descriptors of each modality, normalised per actor (removes identity, as speaker
    normalisation does)."""
    clips = discover(synth_root).clips
    prepared = [prepare_clip(clip, VideoConfig(), AudioConfig()) for clip in clips]
    actors = np.array([c.actor for c in clips])
    labels = np.array([EMOTIONS.index(c.emotion) for c in clips])
    out = []
    for feats in (np.stack([_video_descriptor(p.video) for p in prepared]),
                  np.stack([_audio_descriptor(p.audio) for p in prepared])):
        for a in np.unique(actors):
            rows = actors == a
            feats[rows] = (feats[rows] - feats[rows].mean(0)) / (feats[rows].std(0) + 1e-6)
        out.append(feats)
    return out, labels, actors


def _leave_one_actor_out(feats, labels, actors) -> float:
    correct = 0
    for a in np.unique(actors):
        train, test = actors != a, actors == a
        centroids = np.stack([feats[train & (labels == k)].mean(0) for k in range(8)])
        dist = ((feats[test][:, None, :] - centroids[None]) ** 2).sum(-1)
        correct += int((dist.argmin(1) == labels[test]).sum())
    return correct / len(labels)


def test_emotion_is_recognisable_in_each_modality_on_unseen_actors(synth_root):
    (video, audio), labels, actors = _descriptors(synth_root)
    chance = 1 / 8  # measured when written: video 0.59, audio 1.0, shuffled labels 0.09
    assert _leave_one_actor_out(video, labels, actors) >= 3 * chance
    assert _leave_one_actor_out(audio, labels, actors) >= 4 * chance
    shuffled = np.random.default_rng(0).permutation(labels)  # the same classifier cannot learn noise
    assert _leave_one_actor_out(video, shuffled, actors) < 2.5 * chance


def test_a_repeated_clip_plays_the_clip_again_and_again_without_gaps(tmp_path):
    from avemo.synth import repeat_clip, synthesize_long

    source = tmp_path / "short.mp4"
    synthesize_long(source, 4, seed=1, config=SynthConfig(width=96, height=72))
    repeats = repeat_clip(source, tmp_path / "long.mp4", 16)
    assert repeats == 4

    def frames_and_sound(path):
        with av.open(str(path)) as container:
            video = [(f.time, f.to_ndarray(format="gray")) for f in container.decode(video=0)]
        with av.open(str(path)) as container:
            sound = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])  # the left channel
            rate = container.streams.audio[0].rate
        return video, sound, rate

    one, one_sound, rate = frames_and_sound(source)
    many, many_sound, _ = frames_and_sound(tmp_path / "long.mp4")
    assert len(many) == 4 * len(one)
    times = np.array([t for t, _ in many])
    steps = np.diff([t for t, _ in one])
    # one frame after another, across the joins too (the clip's own frame times are rounded to the millisecond)
    # and at a join at most the sound's priming and a packet (2 x 1024 / 48000 s) longer
    assert np.diff(times).min() >= steps.min() - 1e-3 and np.diff(times).max() <= steps.max() + 2 * 1024 / 48000
    for k in range(4):  # each repeat shows the clip's frames (copied packets: the same pixels)
        for (_, a), (_, b) in zip(one, many[k * len(one):(k + 1) * len(one)]):
            assert np.array_equal(a, b)
    # the sound: four times as long but for up to two AAC frames (priming, padding) per join
    assert 0 <= len(many_sound) - 4 * len(one_sound) <= 3 * 2 * 1024 and rate == 48000
    second = one_sound[rate:2 * rate]  # the clip's second second, found again in the last repeat, that much later
    start = 3 * len(one_sound) + rate
    assert max(np.corrcoef(many_sound[start + d:start + d + rate], second)[0, 1] for d in range(0, 3 * 2048 + 1, 32)) > 0.9
