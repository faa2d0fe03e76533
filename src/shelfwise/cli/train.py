"""`shelfwise train`: train one model on a dataset split, watch it, keep it.

    shelfwise train --model bprmf --dataset movielens-100k --protocol holdout \\
        --optimizer adamw --schedule warmup_cosine --epochs 40 --out var/train/bprmf

Torch models (`bprmf`, and the sequential ones) train with a progress bar, validate each
epoch on the protocol's validation part (leave-last-out's second-to-last items; for
protocols without one, the model's internal hold-out, see
`shelfwise.recommenders.torch_base`), early-stop and write into `--out`:

- `model/`: the fitted model (`Recommender.save` format; `shelfwise evaluate --model-dir`
  scores it),
- `curves.json` / `curves.png`: per-epoch loss, validation metrics and learning rate,
- `checkpoint/checkpoint.pt`: rewritten every epoch; `--resume` continues from it,
- `train.json`: what ran (dataset, protocol, parameters, seconds), the early-stopping
  outcome and the test metrics of the saved model.

Classic models just fit (no curves, no checkpoint); the training flags are refused for
them. Everything is checked before the data is loaded: an unknown model, optimiser or
schedule, a negative learning rate or an incompatible combination fails at once with the
valid choices.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shelfwise.errors import ConfigError

if TYPE_CHECKING:  # numpy and scipy load when a command runs, not when the parser is built
    import numpy as np

log = logging.getLogger("shelfwise.cli")

# command-line flags that set training options of torch models: flag dest -> config field
TRAIN_FLAGS: dict[str, str] = {
    "optimizer": "optimizer",
    "schedule": "schedule",
    "epochs": "epochs",
    "lr": "lr",
    "batch_size": "batch_size",
    "patience": "patience",
    "device": "device",
    "threads": "threads",
}


def is_torch_model(name: str) -> bool:
    """True for registered models trained by `shelfwise.train` (TorchRecommender)."""
    from shelfwise.recommenders.base import model_class, needs_torch

    if not needs_torch(name):  # answered from the registry table: no torch import
        return False
    from shelfwise.recommenders.torch_base import TorchRecommender

    return issubclass(model_class(name), TorchRecommender)


def model_params(args: argparse.Namespace) -> dict[str, Any]:
    """The model's parameters from --config, --set and the training flags (in that order
    of precedence, last wins), validated against the model's config."""
    from shelfwise.config_params import load_config, merge, parse_set, validate_params
    from shelfwise.recommenders import available

    name = args.model
    if name not in available():
        raise ConfigError(
            f"--model: unknown model {name!r}; valid models: {', '.join(available())}"
        )
    params = merge(load_config(Path(args.config)) if args.config else {}, parse_set(args.set or []))
    others = sorted(m for m in params if m != name)
    if others:
        raise ConfigError(
            f"parameters given for {', '.join(others)}, but --model is {name}; "
            f"use --set {name}.PARAM=VALUE"
        )
    mine = dict(params.get(name, {}))
    flags = {field: getattr(args, dest) for dest, field in TRAIN_FLAGS.items()}
    flags = {k: v for k, v in flags.items() if v is not None}
    if flags and not is_torch_model(name):
        torch_models = [n for n in available() if is_torch_model(n)]
        raise ConfigError(
            f"--{next(iter(flags)).replace('_', '-')} applies to torch models only "
            f"({', '.join(torch_models)}); {name} trains with its own solver"
        )
    mine.update(flags)
    validate_params({name: mine})
    return mine


def training_input(model: Any, data: Any) -> Any:
    """What `fit` gets: the training matrix, or for a sequential model the matrix with the
    users' ordered training events (as the evaluation runner does)."""
    from shelfwise.evaluation import runner

    ordered = getattr(runner, "ordered_history", None)
    sequences = ordered(model, data) if ordered is not None else None
    if sequences is None:
        return data.train
    from shelfwise.data.sequences import OrderedInteractions

    return OrderedInteractions(data.train, sequences)


def score_fitted(
    model: Any,
    data: Any,
    k: int = 10,
    negatives: np.ndarray | None = None,
    n_sampled: int | None = None,
) -> dict[str, Any]:
    """The evaluation runner's metrics of an already fitted model on `data.test`."""
    from shelfwise.evaluation.runner import fitted_metrics

    if model.n_items != data.n_items:
        raise ConfigError(
            f"the saved {model.name} model has {model.n_items} items but this split has "
            f"{data.n_items}: evaluate it on the dataset it was trained on"
        )
    return fitted_metrics(model, data, k, negatives, n_sampled)[0]


def resolve_model_dir(path: Path) -> Path:
    """A saved model's folder: `path` itself, or `path/model` (a `shelfwise train --out`)."""
    for candidate in (path, path / "model"):
        if (candidate / "config.json").is_file():
            return candidate
    raise ConfigError(f"--model-dir {path}: no saved model (config.json) there or in {path}/model")


def cmd_train(args: argparse.Namespace) -> int:
    """Validate the options, split the data, train, save, score, write the outputs."""
    from shelfwise.evaluation.protocols import prepare
    from shelfwise.evaluation.sources import load_frames
    from shelfwise.recommenders import create

    params = model_params(args)  # fails before any data is loaded
    torch_model = is_torch_model(args.model)
    if args.protocol is None:  # next-item models are judged on the next item
        args.protocol = "loo" if create(args.model, **params).sequential else "holdout"
    out = Path(args.out or f"var/train/{args.model}-{Path(args.dataset).stem}-{args.protocol}")
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    label, events, items = load_frames(args.dataset, args.seed)
    data = prepare(events, args.protocol, seed=args.seed, items=items)
    m = data.summary["matrix"]
    log.info(
        "%s (%s): %d users x %d items, train %d, validation %d, test %d (%.1fs)",
        label, args.protocol, m["users"], m["items"], m["train_nnz"], m["validation_nnz"],
        m["test_nnz"], time.perf_counter() - t0,
    )  # fmt: skip
    model = create(args.model, **params)
    train = training_input(model, data)
    t0 = time.perf_counter()
    history = None
    if torch_model:
        model.fit(  # type: ignore[call-arg]
            train,
            data.catalog,
            validation=data.validation,
            checkpoint_dir=out / "checkpoint",
            resume=args.resume,
            progress=not args.no_progress,
        )
        history = getattr(model, "history", None)
    else:
        if args.resume:
            log.info("--resume: %s has no checkpoints; fitting from scratch", args.model)
        model.fit(train, data.catalog)
    fit_seconds = time.perf_counter() - t0
    model.save(out / "model")
    test = score_fitted(model, data, k=args.k)
    test["fit_seconds"] = fit_seconds
    summary: dict[str, Any] = {
        "model": args.model,
        "dataset": label,
        "protocol": args.protocol,
        "seed": args.seed,
        "params": params,
        "config": model.config.model_dump(mode="json"),
        "fit_seconds": round(fit_seconds, 3),
        "split": data.summary["matrix"],
        "test": test,
        "model_dir": str(out / "model"),
    }
    if history is not None:
        from shelfwise.train.curves import plot_curves

        history.to_json(out / "curves.json")
        plot_curves(history, out / "curves.png", title=f"{args.model} on {label}")
        summary.update(
            epochs_run=len(history.epochs),
            best_epoch=history.best_epoch,
            best_value=history.best_value,
            monitor=history.monitor,
            stopped_early=history.stopped_early,
            diverged=history.diverged,
            curves=str(out / "curves.json"),
            curves_png=str(out / "curves.png"),
        )
    (out / "train.json").write_text(json.dumps(_clean(summary), indent=2))
    k = args.k
    lines = [
        f"model       {args.model} on {label} ({args.protocol})",
        f"fit         {fit_seconds:.1f}s",
    ]
    if history is not None:
        best = "-" if history.best_value is None else f"{history.best_value:.4f}"
        lines.append(
            f"epochs      {len(history.epochs)} (best {history.monitor} {best} at epoch "
            f"{history.best_epoch}{', stopped early' if history.stopped_early else ''})"
        )
    lines.append(
        f"test        ndcg@{k} {test[f'ndcg@{k}']:.4f}  hr@{k} {test[f'hr@{k}']:.4f}  "
        f"recall@{k} {test[f'recall@{k}']:.4f}"
    )
    lines.append(f"written     {out}/ (model/, train.json{', curves' if history else ''})")
    print("\n".join(lines))
    return 0


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `shelfwise train` on the CLI's subparsers."""
    from shelfwise.train.choices import DEVICES, OPTIMIZERS, SCHEDULES

    p: argparse.ArgumentParser = subparsers.add_parser(
        "train",
        help="train one model on a dataset split (torch models: progress, early stopping, "
        "curves, checkpoints)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("--model", required=True, help="a registered model, e.g. bprmf or sasrec")
    p.add_argument(
        "--dataset",
        required=True,
        help="a dataset name (see `shelfwise datasets`), 'demo', or a .duckdb store file",
    )
    p.add_argument(
        "--protocol",
        choices=("loo", "holdout", "temporal"),
        default=None,
        help="loo: leave last out (validation = second to last); holdout: per-user random "
        "75/25; temporal: global time cut (default: loo for sequential models, else holdout)",
    )
    p.add_argument("--optimizer", metavar="NAME", help=f"one of {', '.join(OPTIMIZERS)}")
    p.add_argument("--schedule", metavar="NAME", help=f"one of {', '.join(SCHEDULES)}")
    p.add_argument("--epochs", type=int, help="maximum epochs (early stopping may end sooner)")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--batch-size", type=int, help="0 = full batch, 1 = single sample")
    p.add_argument("--patience", type=int, help="early-stopping patience (0 disables)")
    p.add_argument("--device", metavar="NAME", help=f"one of {', '.join(DEVICES)}")
    p.add_argument("--threads", type=int, help="CPU threads for torch (0 = torch's default)")
    p.add_argument(
        "--set",
        action="append",
        metavar="MODEL.PARAM=VALUE",
        help="a model parameter, e.g. --set bprmf.factors=128 (repeatable; VALUE is TOML)",
    )
    p.add_argument("--config", help="a TOML file with a [MODEL] table of parameters")
    p.add_argument("--out", help="output folder (default var/train/MODEL-DATASET-PROTOCOL)")
    p.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in --out if any"
    )
    p.add_argument("--k", type=int, default=10, help="list length of the test metrics")
    p.add_argument("--seed", type=int, default=42, help="split seed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
    return p


def evaluate_saved(
    directories: list[str],
    data: Any,
    k: int,
    sampled: int | None,
    seed: int,
    taken: Any = (),
) -> dict[str, Any]:
    """`ModelRun`s of saved models scored on `data` without refitting (for
    `shelfwise evaluate --model-dir`); labels are model names, made unique against `taken`."""
    import scipy.sparse as sp

    from shelfwise.evaluation.protocols import sample_negatives
    from shelfwise.evaluation.runner import ModelRun, scoring_view
    from shelfwise.recommenders import load_model

    negatives = None
    if sampled:
        everything = sp.csr_matrix(data.train + data.validation + data.test)
        everything.sort_indices()
        negatives = sample_negatives(everything, scoring_view(data).test_users, sampled, seed)
    runs: dict[str, Any] = {}
    for raw in directories:
        directory = resolve_model_dir(Path(raw))
        model = load_model(directory)
        label = model.name
        if label in taken or label in runs:
            label = f"{model.name}[{raw}]"
        log.info("%s: scoring the saved model in %s", label, directory)
        runs[label] = ModelRun(label, metrics=score_fitted(model, data, k, negatives, sampled))
    return runs
