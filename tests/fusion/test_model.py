import pytest
import torch
import torch.nn.functional as F

from avemo.fusion import model as model_module
from avemo.fusion.model import FusionConfig, FusionModel, count_parameters, flops_per_clip


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


def test_width_must_split_into_heads():
    with pytest.raises(ValueError, match="divisible"):
        FusionConfig(dim=100, heads=3)
