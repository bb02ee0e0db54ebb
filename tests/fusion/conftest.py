"""Small feature caches for fusion tests: synthetic actors through the real pipeline with a small backbone."""

from __future__ import annotations

from pathlib import Path

import pytest

from avemo.engines.backbones import BackboneConfig
from avemo.extract import ExtractConfig, run_extract
from avemo.pipeline.video import VideoConfig
from avemo.synth import SynthConfig, synthesize


def make_cache(root: Path, actors: int, clips: int, split_cues: bool = False) -> Path:
    synthesize(root / "data", actors, clips, seed=2, config=SynthConfig(width=96, height=72, split_cues=split_cues))
    config = ExtractConfig(data=root / "data", cache=root / "cache", workers=1, batch_size=8,
                           backbones=BackboneConfig(video_arch="r3d10"), video=VideoConfig(size=64, resize=64))
    assert run_extract(config).entries == actors * clips
    return root / "cache"


@pytest.fixture(scope="session")
def fusion_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 actors x 8 clips (every emotion once per actor): video (6, 512, 4), audio (6, 512)."""
    return make_cache(tmp_path_factory.mktemp("fusion"), actors=8, clips=8)


@pytest.fixture(scope="session")
def split_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """As ``fusion_cache`` but each modality carries only part of the emotion."""
    return make_cache(tmp_path_factory.mktemp("split"), actors=8, clips=8, split_cues=True)
