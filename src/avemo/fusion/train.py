"""Training of the fusion model on cached features, one fold at a time.

A run directory holds everything a run produced::

    RUN/config.json      the TrainConfig (file + CLI overrides) and the cache's fingerprint and inputs
    RUN/splits.json      actors and clip ids of every fold
    RUN/fold_k/last.pt   resumable state after every epoch: model, optimiser, scheduler, RNG, counters,
                         metrics (what --resume needs and no more: no copy of the best weights)
    RUN/fold_k/best-so-far.pt   the best epoch's weights while the fold trains, written only when the best
                         changes (removed when the fold ends)
    RUN/fold_k/best.pt   the best epoch's weights on the validation actors, with class centroids: the fold is done
    RUN/fold_k/predictions.npz   test-actor labels, probabilities, embeddings, centroid predictions
    RUN/fold_k/tensorboard/      scalars: loss terms, accuracy, UAR, learning rate

Checkpoints are written and read by :mod:`avemo.fusion.checkpoint` (atomically, ``weights_only=True``). A resumed fold continues exactly
where it stopped: data order is drawn from (seed, epoch) and the RNG state is restored.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from avemo.choices import Loss
from avemo.files import atomic_write
from avemo.fusion.checkpoint import CheckpointError, has_input_statistics, load_checkpoint, save_checkpoint
from avemo.fusion.data import FeatureSet
from avemo.fusion.losses import build_loss
from avemo.fusion.config import TrainConfig
from avemo.fusion.model import FusionModel
from avemo.fusion.splits import Fold
from avemo.reports.metrics import uar


@dataclass
class FoldResult:
    name: str
    best_epoch: int
    best_val_uar: float
    epochs_run: int


def warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up, then cosine decay to zero."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return factor


def fold_identity(fold: Fold, clip_ids: list[str]) -> str:
    """Hash of the clips in each role, so a checkpoint is never resumed on other splits."""
    parts = {role: [clip_ids[i] for i in getattr(fold, role)] for role in ("train", "val", "test")}
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def embed(model: FusionModel, data: FeatureSet, index: list[int], batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings, logits) of the clips at ``index``, in eval mode, without autograd bookkeeping.

    ``batch_size`` clips at a time: the model makes a float32 copy of its video input (and the projection a
    transposed one), so embedding a whole split at once would set the process's peak memory; chunks bound it.
    """
    model.eval()
    with torch.inference_mode():
        outs = [model(data.video[chunk], data.audio[chunk]) for chunk in torch.tensor(index).split(batch_size)]
        # clone: inference tensors cannot be saved for backward or changed in place outside inference mode
        return torch.cat([o[0] for o in outs]).clone(), torch.cat([o[1] for o in outs]).clone()


def class_centroids(embeddings: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    """(classes, D) unit-length mean embedding per class (zeros for a class absent from training)."""
    sums = torch.zeros(classes, embeddings.shape[1]).index_add_(0, labels, embeddings)
    return torch.nn.functional.normalize(sums, dim=1)


def predict_labels(embeddings: torch.Tensor, logits: torch.Tensor, centroids: torch.Tensor | None,
                   classes: list[int], use_classifier: bool) -> torch.Tensor:
    """Classifier argmax (restricted to the classes of the data) or nearest class centroid."""
    allowed = torch.tensor(classes)
    scores = logits[:, allowed] if use_classifier else (embeddings @ centroids.T)[:, allowed]
    return allowed[scores.argmax(dim=1)]


def train_fold(data: FeatureSet, fold: Fold, config: TrainConfig, out: Path, resume: bool = False,
               on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> FoldResult:
    """Train one fold, keep the best epoch on the validation actors, write its test predictions."""
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    model = FusionModel(config.model)
    loss_fn = build_loss(config.loss, config.margin, config.metric_weight, config.margin_scale, data.class_names)
    use_classifier = Loss(config.loss).trains_classifier
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(fold.train) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(config.warmup_epochs * steps_per_epoch, config.epochs * steps_per_epoch))
    state: dict[str, Any] = {"epoch": 0, "best_uar": -1.0, "best_epoch": 0, "bad_epochs": 0, "history": []}
    train_index = torch.tensor(fold.train)
    identity = fold_identity(fold, data.clip_ids)

    last, best_so_far, best_path = out / "last.pt", out / "best-so-far.pt", out / "best.pt"
    resuming = resume and last.exists()
    if not resuming:  # a resumed fold reads its statistics from last.pt
        model.fit_inputs(data.video, data.audio, train_index)
    best_model = {k: v.clone() for k, v in model.state_dict().items()}
    if resuming:
        checkpoint = load_checkpoint(last, "last")
        # A whole checkpoint that does not belong to this run as asked: the user's choice of settings or cache.
        if checkpoint["config"] != config.to_dict():
            raise CheckpointError(f"{last}: was trained with other settings; resume with the settings the run "
                                  "was started with, or start a new --run")
        if checkpoint["fold"] != identity:
            raise CheckpointError(f"{last}: was trained on other clips (the cache changed since); start a new --run")
        if not has_input_statistics(checkpoint["model"]):
            raise CheckpointError(f"{last}: was trained on raw features, before avemo standardised its inputs; "
                                  "start a new --run")
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        torch.set_rng_state(checkpoint["rng"])
        state = checkpoint["state"]
        if "best_model" in state:  # a last.pt written before issue 12 carried the best weights inside
            best_model = state.pop("best_model")
        elif state["best_epoch"] > 0:  # the best weights live in their own file, written when they changed
            source, kind = (best_so_far, "best-so-far") if best_so_far.exists() else (best_path, "best")
            best_model = load_checkpoint(source, kind)["model"]
    writer = SummaryWriter(str(out / "tensorboard"), purge_step=state["epoch"] + 1)

    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        if state["bad_epochs"] >= config.patience:
            break
        model.train()
        order = train_index[torch.randperm(len(train_index), generator=torch.Generator().manual_seed(
            config.seed * 100_003 + epoch))]
        sums: dict[str, float] = {}
        correct = 0
        for batch in order.split(config.batch_size):
            labels = data.labels[batch]
            embeddings, logits = model(data.video[batch], data.audio[batch])
            terms = loss_fn(embeddings, logits, labels)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) * len(batch)
            correct += int((logits.argmax(1) == labels).sum())

        centroids = None
        if not use_classifier:  # only centroid predictions need the training embeddings
            train_emb, _ = embed(model, data, fold.train)
            centroids = class_centroids(train_emb, data.labels[fold.train], config.model.num_classes)
        val_emb, val_logits = embed(model, data, fold.val)
        val_labels = data.labels[fold.val]
        val_pred = predict_labels(val_emb, val_logits, centroids, data.classes, use_classifier)
        metrics = {f"train/{k}": v / len(fold.train) for k, v in sums.items()}
        metrics.update({"train/accuracy": correct / len(fold.train), "lr": scheduler.get_last_lr()[0],
                        "val/accuracy": float((val_pred == val_labels).float().mean()),
                        "val/uar": uar(val_labels.numpy(), val_pred.numpy())})
        for key, value in metrics.items():
            writer.add_scalar(key, value, epoch)
        if metrics["val/uar"] > state["best_uar"]:
            state.update(best_uar=metrics["val/uar"], best_epoch=epoch, bad_epochs=0)
            best_model = {k: v.clone() for k, v in model.state_dict().items()}
            save_checkpoint({"model": best_model, "config": config.to_dict(), "epoch": epoch,
                             "val_uar": metrics["val/uar"]}, best_so_far, "best-so-far")
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        state["history"].append({"epoch": epoch, **metrics})
        save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(), "state": state,
                         "config": config.to_dict(), "fold": identity}, last, "last")
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    writer.close()

    model.load_state_dict(best_model)
    train_emb, _ = embed(model, data, fold.train)
    centroids = class_centroids(train_emb, data.labels[fold.train], config.model.num_classes)
    save_checkpoint({"model": best_model, "centroids": centroids, "config": config.to_dict(),
                     "epoch": state["best_epoch"], "val_uar": state["best_uar"]}, best_path, "best")
    test_emb, test_logits = embed(model, data, fold.test)
    predictions = io.BytesIO()
    np.savez(predictions,
             clip_ids=np.array([data.clip_ids[i] for i in fold.test]),
             actors=data.actors[fold.test], labels=data.labels[fold.test].numpy(),
             probabilities=torch.softmax(test_logits, dim=1).numpy(), embeddings=test_emb.numpy(),
             classifier_pred=predict_labels(test_emb, test_logits, centroids, data.classes, True).numpy(),
             centroid_pred=predict_labels(test_emb, test_logits, centroids, data.classes, False).numpy(),
             use_classifier=np.array(use_classifier))
    atomic_write(out / "predictions.npz", predictions.getvalue())
    atomic_write(out / "metrics.json", json.dumps({"best_epoch": state["best_epoch"], "best_val_uar": state["best_uar"],
                                                   "history": state["history"]}, indent=1).encode())
    best_so_far.unlink(missing_ok=True)  # best.pt holds the same weights now
    return FoldResult(fold.name, state["best_epoch"], state["best_uar"], state["epoch"])
