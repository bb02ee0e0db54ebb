"""avemo: audio-visual emotion recognition (Mocanu, Tapu & Zaharia, Image and Vision Computing 2023).

The Python API, in the order of the work::

    import avemo
    avemo.extract("data/RAVDESS", cache="cache/r101", video_weights="resnet-101-kinetics.pth",
                  audio_weights="resnet18-f37072fd.pth")            # clips -> cached backbone features
    avemo.train("cache/r101", run="runs/r101", config=avemo.TrainConfig(epochs=40))
    run = avemo.Run("runs/r101")                                     # the run folder
    rec = run.recognizer(device="auto")                              # backbones + fold models, loaded once
    rec.predict(["a.mp4", "b.mp4"])                                  # -> Predictions
    rec.timeline("interview.mp4", hop=0.5)                           # -> Timeline

Names are imported on first use, so ``import avemo`` stays light (no torch until a model is needed).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that owns it
_EXPORTS = {
    "extract": "avemo.api", "train": "avemo.api", "evaluate": "avemo.api",
    "Run": "avemo.fusion.run", "Recognizer": "avemo.recognizer",
    "Prediction": "avemo.reports.results", "Predictions": "avemo.reports.results",
    "Timeline": "avemo.reports.results", "Window": "avemo.reports.results",
    "TrainConfig": "avemo.fusion.config", "FusionConfig": "avemo.fusion.config",
    "FeatureSpec": "avemo.spec",
    "AvemoError": "avemo.errors", "SetupError": "avemo.errors",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from avemo.api import evaluate, extract, train
    from avemo.errors import AvemoError, SetupError
    from avemo.fusion.config import FusionConfig, TrainConfig
    from avemo.fusion.run import Run
    from avemo.recognizer import Recognizer
    from avemo.reports.results import Prediction, Predictions, Timeline, Window
    from avemo.spec import FeatureSpec


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'avemo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
