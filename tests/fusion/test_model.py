import pytest
import torch
import torch.nn.functional as F
from torch import nn

from avemo.errors import AvemoError
from avemo.fusion import model as model_module
from avemo.fusion.model import FusionConfig, FusionModel, InputShapeError, count_parameters, flops_per_clip


def _inputs(batch=3):
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch, 6, 2048, 16, generator=g).half(), torch.randn(batch, 6, 512, generator=g).half()


def test_outputs_are_unit_embeddings_and_logits():
    model = FusionModel(FusionConfig()).eval()
    emb, logits = model(*_inputs())
    assert emb.shape == (3, 128) and logits.shape == (3, 8)
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    assert count_parameters(model) > 1e6 and flops_per_clip(model) > 1e8


def test_channel_attention_never_builds_a_2048_square(monkeypatch):
    """Every SDPA call scores at most (dim/heads)^2 pairs per head; the seed built 2048 x 2048."""
    shapes = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, **kw):
        shapes.append((q.shape[-2], k.shape[-2]))
        return real(q, k, v, **kw)

    monkeypatch.setattr(model_module.F, "scaled_dot_product_attention", spy)
    config = FusionConfig(dim=256, heads=4)
    FusionModel(config).eval()(*_inputs())
    assert (64, 64) in shapes  # the channel attention: 256 / 4 channels per head
    assert max(q * k for q, k in shapes) <= 64 * 64


@pytest.mark.parametrize("modality", ["video", "audio"])
def test_single_modality_ablations_ignore_the_other_input(modality):
    model = FusionModel(FusionConfig(modality=modality)).eval()
    video, audio = _inputs()
    other_video, other_audio = _inputs(3)
    other_video, other_audio = other_video.flip(0), other_audio.flip(0)
    base = model(video, audio)[0]
    changed = model(video, other_audio)[0] if modality == "video" else model(other_video, audio)[0]
    assert torch.equal(base, changed)
    assert (model.video is None) == (modality == "audio") and (model.audio is None) == (modality == "video")


def test_cross_attention_runs_in_the_forward_pass_and_lets_audio_shape_the_video_tokens():
    video, audio = _inputs()
    fused = FusionModel(FusionConfig()).eval()
    plain = FusionModel(FusionConfig(cross_attention=False)).eval()
    assert plain.video_from_audio is None and count_parameters(fused) > count_parameters(plain)
    seen = []
    fused.video_from_audio.register_forward_hook(lambda module, args, out: seen.append(out))
    fused(video, audio)
    fused(video, audio.flip(0))
    assert len(seen) == 2 and not torch.allclose(seen[0], seen[1])


def test_count_parameters_counts_the_trainable_ones_only():
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 5))  # 3 * 2 + 2 and 2 * 5 + 5
    assert count_parameters(net) == 8 + 15
    net[1].requires_grad_(False)
    assert count_parameters(net) == 8


def test_features_of_another_shape_are_refused_naming_the_shapes():
    model = FusionModel(FusionConfig(dim=32)).eval()
    video, audio = _inputs()
    with pytest.raises(InputShapeError, match=r"video features of shape \(3, 6, 1024, 16\): this model reads "
                                              r"\(clips, 6, 2048, 16\)") as caught:
        model(video[:, :, :1024], audio)
    assert isinstance(caught.value, AvemoError) and isinstance(caught.value, ValueError)
    with pytest.raises(InputShapeError, match=r"audio features of shape \(3, 4, 512\)"):
        model(video, audio[:, :4])
    audio_only = FusionModel(FusionConfig(dim=32, modality="audio")).eval()
    assert audio_only(video[:, :, :7], audio)[0].shape == (3, 128)  # a modality the model ignores is not checked


def test_width_must_split_into_heads():
    with pytest.raises(ValueError, match="divisible"):
        FusionConfig(dim=100, heads=3)


def test_input_standardisation_is_fitted_on_the_training_clips_only():
    """Channels whose offsets and scales differ by orders of magnitude come out at mean 0 and deviation 1 over
    the clips the statistics were fitted on; other clips (here shifted) do not move the statistics, and a
    channel that never varies stays finite."""
    g = torch.Generator().manual_seed(1)
    scale = torch.logspace(-1, 2, 2048).view(1, 1, 2048, 1)
    video = (torch.randn(10, 6, 2048, 16, generator=g) * scale + 3 * scale).half()
    video[:, :, 7] = 0.5  # a dead channel
    audio = (torch.rand(10, 6, 512, generator=g) * 50).half()
    video[8:] += 100  # clips outside the fit
    model = FusionModel(FusionConfig(dim=32)).eval()
    fresh = model(video[:2], audio[:2])[0]
    train = torch.arange(8)
    model.fit_inputs(video, audio, train)
    x = model.video_norm(video[train].float())
    live = torch.ones(2048, dtype=torch.bool)
    live[7] = False
    torch.testing.assert_close(x.mean(dim=(0, 1, 3))[live], torch.zeros(2047), atol=2e-3, rtol=0)
    torch.testing.assert_close(x.std(dim=(0, 1, 3), correction=0)[live], torch.ones(2047), atol=2e-3, rtol=0)
    assert torch.isfinite(x[:, :, 7]).all() and x[:, :, 7].abs().max() < 1e-3
    a = model.audio_norm(audio[train].float())
    torch.testing.assert_close(a.mean(dim=(0, 1)), torch.zeros(512), atol=2e-3, rtol=0)
    torch.testing.assert_close(a.std(dim=(0, 1), correction=0), torch.ones(512), atol=2e-3, rtol=0)
    assert not torch.allclose(model(video[:2], audio[:2])[0], fresh)  # the forward pass reads them


def test_an_unfitted_standardisation_passes_the_features_through():
    """What a model saw before avemo standardised its inputs: checkpoints without the statistics load as this."""
    model = FusionModel(FusionConfig(dim=32))
    video, audio = _inputs()
    assert torch.equal(model.video_norm(video.float()), video.float())
    assert torch.equal(model.audio_norm(audio.float()), audio.float())
    assert model.video_norm.mean.shape == (1, 1, 2048, 1) and model.audio_norm.std.shape == (1, 1, 512)
    assert FusionModel(FusionConfig(modality="audio")).video_norm is None
