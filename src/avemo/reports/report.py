"""``avemo evaluate``: metrics per fold and over folds, plots, and a JSON and a Markdown report in the run."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from avemo.files import atomic_write
from avemo.fusion.run import Run, RunError
from avemo.reports.metrics import fold_metrics, summarise
from avemo.reports.plots import plot_confusion, plot_embeddings


def _load_predictions(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise RunError(f"{path}: unreadable ({type(err).__name__}); train that fold again with avemo train "
                       "--resume") from None


def evaluate_run(run: Run | Path) -> dict[str, Any]:
    """Score every trained fold of ``run`` and write report.json, report.md, confusion.png, embedding.png."""
    run = run if isinstance(run, Run) else Run(run)
    classes, names = run.class_ids, run.label_names
    folds = [f.path for f in run.folds if f.predictions.is_file()]
    missing = [name for name in run.planned_folds if name not in {f.name for f in folds}]
    if not folds:
        raise RunError(f"{run.path}: no trained fold (*/predictions.npz); run avemo train first")
    per_fold: dict[str, list[dict[str, Any]]] = {"classifier": [], "centroid": []}
    pooled: dict[str, list[np.ndarray]] = {"labels": [], "classifier": [], "centroid": []}
    fold_names, embeddings = [], []
    for fold in folds:
        p = _load_predictions(fold / "predictions.npz")
        fold_names.append(fold.name)
        for head in ("classifier", "centroid"):
            per_fold[head].append({"fold": fold.name, "test_actors": sorted(set(p["actors"].tolist())),
                                   "clips": int(len(p["labels"])),
                                   **fold_metrics(p["labels"], p[f"{head}_pred"], classes, names)})
            pooled[head].append(p[f"{head}_pred"])
        pooled["labels"].append(p["labels"])
        embeddings.append((fold.name, p["embeddings"], p["labels"]))
    primary = run.head
    train = run.config
    labels = np.concatenate(pooled["labels"])
    report = {
        "run": str(run.path), "dataset": run.dataset, "protocol": train.protocol,
        "loss": train.loss, "modality": train.model.modality,
        "cross_attention": train.model.cross_attention, "primary_head": primary,
        "folds": fold_names, "missing_folds": missing, "classes": [names[k] for k in classes],
        "speakers_known": run.speakers_known,
        "heads": {head: {"per_fold": per_fold[head], "mean_std": summarise(per_fold[head]),
                         "pooled": fold_metrics(labels, np.concatenate(pooled[head]), classes, names)}
                  for head in ("classifier", "centroid")},
    }
    if primary != "classifier":
        report["heads"]["classifier"]["note"] = "untrained: the triplet loss does not train the classifier head"
    heads = [primary] + (["centroid"] if primary == "classifier" else [])  # an untrained classifier is not drawn
    plot_confusion(labels, {h: np.concatenate(pooled[h]) for h in heads}, classes, names, run.path / "confusion.png",
                   f"test speakers of {len(fold_names)} fold(s), {len(labels)} clips")
    plot_embeddings(embeddings, names, run.path / "embedding.png")
    atomic_write(run.path / "report.json", json.dumps(report, indent=1).encode())
    atomic_write(run.path / "report.md", markdown(report).encode())
    return report


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown page."""
    lines = [f"# avemo evaluation: {report['run']}", "",
             f"Dataset {report['dataset']}, protocol {report['protocol']}, loss {report['loss']}, modality "
             f"{report['modality']}, cross-attention {report['cross_attention']}; primary predictions: "
             f"{report['primary_head']}.", ""]
    if report["missing_folds"]:
        lines += [f"**Incomplete run: folds {', '.join(report['missing_folds'])} are not trained; the means cover "
                  f"{len(report['folds'])} fold(s).**", ""]
    if not report.get("speakers_known", True):
        lines += ["**Speakers unknown: every clip was its own speaker, so the folds split clips, not speakers; a "
                  "speaker may appear in training and test (give --speaker-pattern or a manifest's speaker "
                  "column for speaker-independent results).**", ""]
    if report["protocol"] != "actors":
        lines += ["**Random clip split (the seed's protocol): actors appear in training and test; not comparable "
                  "with actor-independent results.**", ""]
    for head, data in report["heads"].items():
        lines += [f"## {head} head" + (f" ({data['note']})" if "note" in data else ""), "",
                  "| fold | test actors | clips | accuracy | UAR | macro-F1 |", "|---|---|---|---|---|---|"]
        for f in data["per_fold"]:
            lines.append(f"| {f['fold']} | {', '.join(map(str, f['test_actors']))} | {f['clips']} | "
                         f"{f['accuracy']:.3f} | {f['uar']:.3f} | {f['macro_f1']:.3f} |")
        ms = data["mean_std"]
        lines += [f"| **mean ± std** | | | {ms['accuracy']['mean']:.3f} ± {ms['accuracy']['std']:.3f} | "
                  f"{ms['uar']['mean']:.3f} ± {ms['uar']['std']:.3f} | "
                  f"{ms['macro_f1']['mean']:.3f} ± {ms['macro_f1']['std']:.3f} |", "",
                  "| emotion | precision | recall | F1 | clips |", "|---|---|---|---|---|"]
        for name in report["classes"]:
            c = data["pooled"]["per_class"][name]
            lines.append(f"| {name} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1-score']:.3f} | "
                         f"{int(c['support'])} |")
        lines.append("")
    lines += ["![confusion matrix](confusion.png)", "", "![embeddings](embedding.png)", ""]
    return "\n".join(lines)
