"""``avemo train``: the fusion model on a feature cache, fold by fold, with a line per fold and a table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional

import typer
from rich.markup import escape
from rich.table import Table

from avemo.choices import Loss, Modality, Protocol
from avemo.cli.shared import Reporter, command, fail, note, out, use_threads
from avemo.fusion.config import TrainConfig

if TYPE_CHECKING:
    from avemo.fusion.splits import Fold
    from avemo.fusion.train import FoldResult


@command
def train(
    cache: Annotated[Path, typer.Argument(metavar="CACHE", help="Feature cache made by avemo extract.")],
    run: Annotated[Path, typer.Option("--run", "--run-dir", help="Run folder for configuration, checkpoints, "
                                      "predictions, report (--run-dir under torchrun, which takes --run for its own).")],
    config: Annotated[Optional[Path], typer.Option(help="TOML or JSON file with training settings (the options "
                                                        "below override it).", show_default="none")] = None,
    folds: Annotated[Optional[str], typer.Option(help="Folds to run, e.g. 1,3.", show_default="all")] = None,
    n_folds: Annotated[Optional[int], typer.Option(help="Number of actor folds.", show_default="6 RAVDESS, 5 CREMA-D")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Maximum epochs per fold.", show_default=str(TrainConfig.epochs))] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=2, help="Clips per batch.", show_default=str(TrainConfig.batch_size))] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (AdamW).", show_default=str(TrainConfig.lr))] = None,
    patience: Annotated[Optional[int], typer.Option(min=1, help="Epochs without a better validation UAR before "
                                                                "stopping.", show_default=str(TrainConfig.patience))] = None,
    loss: Annotated[Optional[Loss], typer.Option(help="emotion-metric (the paper's) or triplet (the seed's).",
                                                 show_default=TrainConfig.loss)] = None,
    protocol: Annotated[Optional[Protocol], typer.Option(help="actors, or random-clips (the seed's leaky split).",
                                                         show_default=TrainConfig.protocol)] = None,
    modality: Annotated[Optional[Modality], typer.Option(help="Ablation: both, video or audio.", show_default="both")] = None,
    cross_attention: Annotated[Optional[bool], typer.Option("--cross-attention/--no-cross-attention",
                                                            help="Ablation: fuse without cross-attention.",
                                                            show_default="cross-attention")] = None,
    dim: Annotated[Optional[int], typer.Option(help="Model width after the input projections.", show_default="256")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.", show_default=str(TrainConfig.seed))] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its last checkpoints.")] = False,
    skip_damaged: Annotated[bool, typer.Option("--skip-damaged", help="Train without cache entries whose checksum "
                                               "fails (named, and listed in the run's config.json) instead of "
                                               "refusing; avemo extract rebuilds them.")] = False,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for torch.",
                                                   show_default="the cores free to this process")] = None,
) -> None:
    """Train the attention fusion model on cached features, fold by fold (actor-independent)."""
    use_threads(threads)
    from avemo import api

    try:
        chosen = [int(k) for k in folds.split(",")] if folds else None
    except ValueError:
        fail(f"--folds {folds!r}: give fold numbers like 1,3")
    settings = TrainConfig.from_sources(config, {
        "folds": chosen, "n_folds": n_folds, "epochs": epochs, "batch_size": batch_size, "lr": lr, "patience": patience,
        "loss": loss.value if loss else None, "protocol": protocol.value if protocol else None,
        "modality": modality.value if modality else None, "cross_attention": cross_attention, "dim": dim, "seed": seed})
    train_and_show(run, settings.epochs, lambda **hooks: api.train(cache, run, settings, resume=resume,
                                                                  skip_damaged=skip_damaged, **hooks))
    note(f"checkpoints and predictions in {run}; next: avemo evaluate {run}")


def train_and_show(run: Path, epochs: int, training: Callable[..., list[FoldResult]]) -> list[FoldResult]:
    """Run ``training(on_start=, on_fold=, on_epoch=)`` with a line per fold and progress per epoch, then print
    the folds' table (stdout)."""
    from avemo import api

    with Reporter("training", epochs, "epochs") as progress:
        def on_start(actual: TrainConfig, folds: list[Fold]) -> None:
            parameters, flops = api.model_summary(actual.model)  # the cache's real shapes, not the defaults
            progress.line(f"model: {parameters / 1e6:.2f} M parameters, {flops / 1e6:.0f} MFLOP per clip; loss "
                          f"{actual.loss}; protocol {actual.protocol}; {len(folds)} fold(s)")

        def on_fold(fold: Fold) -> None:
            actors = f"test actors {fold.test_actors}, validation {fold.val_actors}" if fold.test_actors else \
                "random clips"
            progress.line(f"{fold.name}: {actors}; {len(fold.train)} training clips")
            progress.restart(fold.name, epochs)

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            progress.advance(epoch, f"loss {metrics['train/loss']:.3f} val UAR {metrics['val/uar']:.3f}")

        results = training(on_start=on_start, on_fold=on_fold, on_epoch=on_epoch)
    table = Table(title=f"avemo train {escape(str(run))}")
    for column in ("fold", "best epoch", "validation UAR", "epochs run"):
        table.add_column(column)
    for r in results:
        table.add_row(r.name, str(r.best_epoch), f"{r.best_val_uar:.3f}", str(r.epochs_run))
    out.print(table)
    return results
