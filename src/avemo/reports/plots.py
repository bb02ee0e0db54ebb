"""The pictures: a run's confusion matrices per prediction head and map of each fold's test embeddings; a
video's emotions over time."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

from avemo.files import atomic_write  # noqa: E402
from avemo.reports.metrics import uar  # noqa: E402

if TYPE_CHECKING:
    from avemo.reports.results import Timeline


def _save(fig: plt.Figure, path: Path) -> None:
    """A PNG written whole or not at all (a full disk must not leave half a picture)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format="png")
    plt.close(fig)
    atomic_write(path, buffer.getvalue())


def plot_confusion(labels: np.ndarray, preds: dict[str, np.ndarray], classes: list[int], names: list[str],
                   path: Path, subtitle: str) -> None:
    """Row-normalised confusion matrices (recall on the diagonal, in %), one per head side by side, each cell
    with its clip count, a colour bar, and the head's accuracy and UAR in its title."""
    labels_shown = [names[k] for k in classes]
    n = len(classes)
    side = 0.75 * n + 2.2
    fig, axes = plt.subplots(1, len(preds), figsize=(side * len(preds) + 1.2, side), squeeze=False,
                             constrained_layout=True)
    for ax, (head, pred) in zip(axes[0], preds.items()):
        counts = confusion_matrix(labels, pred, labels=classes)
        percent = 100 * counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(percent, cmap="Blues", vmin=0, vmax=100)
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{percent[i, j]:.0f}%\n({counts[i, j]})", ha="center", va="center", fontsize=8,
                        color="white" if percent[i, j] > 55 else "black")
        ax.set_xticks(range(n), labels_shown, rotation=45, ha="right")
        ax.set_yticks(range(n), labels_shown)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        accuracy = float((pred == labels).mean()) if len(labels) else 0.0
        ax.set_title(f"{head}: accuracy {accuracy:.1%}, UAR {uar(labels, pred):.1%}", fontsize=10)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="% of the true class (row)")
    fig.suptitle(subtitle, fontsize=10)
    _save(fig, path)


def plot_embeddings(folds: list[tuple[str, np.ndarray, np.ndarray]], names: list[str], path: Path,
                    seed: int = 0) -> None:
    """One t-SNE panel per fold: (fold name, that fold's test embeddings by its own model, true labels).

    Folds have models of their own, whose embedding spaces are unrelated: mapped together they would show
    one island per fold. Colours are shared by class across panels.
    """
    columns = min(3, len(folds))
    rows = -(-len(folds) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.0 * rows + 0.6), squeeze=False,
                             constrained_layout=True)
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    present = sorted({int(k) for _, _, labels in folds for k in labels})
    for ax, (name, embeddings, labels) in zip(axes.flat, folds):
        if len(embeddings) >= 4:
            perplexity = float(min(30, max(2, (len(embeddings) - 1) / 3)))
            points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(embeddings)
        else:  # too few clips to map: show them on a line
            points = np.stack([np.arange(len(embeddings)), np.zeros(len(embeddings))], axis=1)
        for k in present:
            rows_k = labels == k
            ax.scatter(points[rows_k, 0], points[rows_k, 1], s=16, color=cmap(k % cmap.N))
        ax.set_title(f"{name} ({len(labels)} test clips)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[len(folds):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=cmap(k % cmap.N), label=names[k]) for k in present]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(present), 8), fontsize=8, frameon=False)
    fig.suptitle("t-SNE of each fold's test embeddings (its own model; colour: true class)", fontsize=10)
    _save(fig, path)


def plot_timeline(timeline: Timeline, path: Path) -> None:
    """Stacked class probabilities over time (window centres), with the top label as a coloured band below."""
    from matplotlib.patches import Patch

    colours = class_colours(timeline.classes)
    good = [w for w in timeline.windows if w.probabilities]
    fig, (ax, band) = plt.subplots(2, 1, figsize=(11, 4.2), sharex=True,
                                   gridspec_kw={"height_ratios": [5, 1], "hspace": 0.08})
    if good:
        centres = np.array([(w.start + w.end) / 2 for w in good])
        probs = np.array([w.probabilities for w in good]).T
        ax.stackplot(centres, probs, colors=[colours[c] for c in timeline.classes], alpha=0.85,
                     labels=timeline.classes)
    for w in timeline.windows:
        centre = (w.start + w.end) / 2
        span = (centre - timeline.hop / 2, timeline.hop)
        if w.probabilities:
            band.broken_barh([span], (0, 1), facecolors=colours[timeline.top(w)])
        else:  # a window that could not be decoded: grey, hatched, in both panels
            band.broken_barh([span], (0, 1), facecolors="lightgrey", hatch="//", edgecolor="grey")
            ax.axvspan(span[0], span[0] + span[1], color="lightgrey", hatch="//", alpha=0.5)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(f"{timeline.path.name}: emotion over time ({timeline.window:.1f} s windows every "
                 f"{timeline.hop:g} s" + ("" if timeline.audio else "; no soundtrack, video only") + ")")
    handles = [Patch(color=colours[c], label=c) for c in reversed(timeline.classes)]  # in the stack's order
    if any(not w.probabilities for w in timeline.windows):
        handles.append(Patch(facecolor="lightgrey", hatch="//", edgecolor="grey", label="not decoded"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    band.set_yticks([0.5], ["top label"])
    band.set_ylim(0, 1)
    band.set_xlabel("time (s)")
    if timeline.windows:
        band.set_xlim(timeline.windows[0].start, timeline.windows[-1].end)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format="png", bbox_inches="tight")
    plt.close(fig)
    atomic_write(path, buffer.getvalue())


def class_colours(classes: list[str]) -> dict[str, str]:
    """Each class's colour in timeline plots (matplotlib's tab10 in the run's class order), as #rrggbb: the web
    page draws with the same ones."""
    from matplotlib.colors import to_hex

    return {c: to_hex(plt.get_cmap("tab10")(i % 10)) for i, c in enumerate(classes)}
