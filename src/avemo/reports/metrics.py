"""Classification metrics of one fold's test predictions, and their mean and spread over folds."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, classification_report, f1_score

from avemo.emotions import EMOTIONS


def uar(labels: np.ndarray, pred: np.ndarray) -> float:
    """Unweighted average recall (balanced accuracy) over the classes present in ``labels``."""
    return float(balanced_accuracy_score(labels, pred))


def fold_metrics(labels: np.ndarray, pred: np.ndarray, classes: list[int],
                 class_names: list[str] | tuple[str, ...] = EMOTIONS) -> dict[str, Any]:
    """Accuracy, UAR (balanced accuracy), macro-F1 and the per-class report over ``classes`` (label ids,
    named by ``class_names``)."""
    names = [class_names[k] for k in classes]
    return {
        "accuracy": float(accuracy_score(labels, pred)),
        "uar": uar(labels, pred),
        # over the classes present, as balanced accuracy is (a fold may lack a class)
        "macro_f1": float(f1_score(labels, pred, labels=np.unique(labels), average="macro", zero_division=0)),
        "per_class": classification_report(labels, pred, labels=classes, target_names=names, output_dict=True,
                                           zero_division=0),
    }


def summarise(per_fold: list[dict[str, Any]], keys: tuple[str, ...] = ("accuracy", "uar", "macro_f1")) -> dict[str, dict[str, float]]:
    """Mean and (population) standard deviation over folds of each headline metric."""
    return {k: {"mean": float(np.mean([f[k] for f in per_fold])), "std": float(np.std([f[k] for f in per_fold]))}
            for k in keys}
