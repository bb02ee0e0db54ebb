"""The two pictures of a run: a confusion matrix and a 2-D map of the test embeddings."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

from avemo.emotions import EMOTIONS  # noqa: E402
from avemo.files import atomic_write  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> None:
    """A PNG written whole or not at all (a full disk must not leave half a picture)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=120, format="png")
    plt.close(fig)
    atomic_write(path, buffer.getvalue())


def plot_confusion(labels: np.ndarray, pred: np.ndarray, classes: list[int], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (recall on the diagonal) with counts, as a PNG."""
    matrix = confusion_matrix(labels, pred, labels=classes)
    recall = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    names = [EMOTIONS[k] for k in classes]
    fig, ax = plt.subplots(figsize=(1.1 * len(classes) + 2, 1.1 * len(classes) + 1))
    ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{matrix[i, j]}", ha="center", va="center",
                    color="white" if recall[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(len(classes)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)


def plot_embeddings(embeddings: np.ndarray, labels: np.ndarray, path: Path, title: str, seed: int = 0) -> None:
    """t-SNE of the test embeddings coloured by true emotion, as a PNG."""
    perplexity = float(min(30, max(2, (len(embeddings) - 1) / 3)))
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(embeddings)
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab10")
    for k in sorted(set(labels.tolist())):
        rows = labels == k
        ax.scatter(points[rows, 0], points[rows, 1], s=18, color=cmap(k), label=EMOTIONS[k])
    ax.legend(loc="best", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)
