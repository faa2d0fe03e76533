"""The training loop shared by every torch model.

A model hands the `Trainer` a `TrainTask`: a module, the batches of one epoch, the loss of a
batch and a validation function. The trainer owns everything else: device placement,
initialisation, the optimiser and schedule (`shelfwise.train.optim`), L1 / L2 penalties,
gradient clipping, mixed precision, an exponential moving average of the weights, early
stopping with restore-best, per-epoch checkpoints and resume, a tqdm progress bar and the
per-epoch history (loss, learning rate, seconds, validation metrics).

Determinism. Epoch `e` draws its batches from a generator seeded with `(seed, e)` and
re-seeds torch's global generator (dropout) with `(seed, e)` too, so an epoch's randomness
does not depend on the epochs before it. A run resumed from the checkpoint of epoch `e`
therefore continues exactly as the uninterrupted run would have (on the same device).

Checkpoints. With `checkpoint_dir`, `checkpoint.pt` is rewritten (atomically) after every
epoch: module, optimiser, schedule, EMA and best weights, early-stopping state and history,
saved with `torch.save` and read back with `torch.load(weights_only=True)` (tensors and
plain values only, no arbitrary pickles).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn
from tqdm.auto import tqdm

from shelfwise.errors import ConfigError
from shelfwise.train.config import TrainFields
from shelfwise.train.init import apply_init
from shelfwise.train.optim import build_optimizer, build_scheduler

log = logging.getLogger("shelfwise.train")

CHECKPOINT = "checkpoint.pt"
# options that may differ between a checkpoint and the run that resumes it
_RESUME_MAY_DIFFER = ("epochs", "device", "time_budget")


def _clock(seconds: float) -> str:
    """`1h02m`, `3m05s` or `12s`."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


@runtime_checkable
class TrainTask(Protocol):
    """What a model gives the trainer.

    - `module`: the torch module to train (the trainer initialises it and moves it to the
      device, then sets `device` on the task).
    - `batches(epoch, batch_size, generator)`: the batches of one epoch, drawn with
      `generator` only (a `torch.Generator` on the training device), so epochs are
      reproducible. `batch_size` 0 means one batch of everything, 1 single samples.
      Optionally the task has `steps_per_epoch(batch_size) -> int`; without it the trainer
      uses `len()` of the batches, or counts the batches of epoch 0 once.
    - `loss(batch)`: the scalar training loss of a batch (move the batch with
      `.to(self.device)`); penalties (L1, lbfgs's L2) are added by the trainer.
    - `validate()`: validation metrics such as `{"ndcg@10": ..., "hr@10": ...}` (higher is
      better), called in eval mode under `torch.no_grad()`; `{}` when there is none.
    """

    device: torch.device

    @property
    def module(self) -> nn.Module:
        """The module to train (a plain attribute in implementations)."""
        ...

    def batches(self, epoch: int, batch_size: int, generator: torch.Generator) -> Iterable[Any]:
        """The batches of epoch `epoch`."""
        ...

    def loss(self, batch: Any) -> torch.Tensor:
        """The loss of one batch."""
        ...

    def validate(self) -> dict[str, float]:
        """Validation metrics (higher is better); empty if there is no validation data."""
        ...


def index_batches(
    n: int, batch_size: int, generator: torch.Generator, shuffle: bool = True
) -> Iterator[torch.Tensor]:
    """Shuffled index tensors covering 0..n-1 in batches (0 = one batch, 1 = single samples),
    on the generator's device."""
    device = generator.device
    order = (
        torch.randperm(n, generator=generator, device=device)
        if shuffle
        else torch.arange(n, device=device)
    )
    size = n if batch_size == 0 else batch_size
    for start in range(0, n, max(1, size)):
        yield order[start : start + size]


def n_batches(n: int, batch_size: int) -> int:
    """How many batches `index_batches(n, batch_size, ...)` yields."""
    return 1 if batch_size == 0 else math.ceil(n / batch_size)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Within the block torch uses `n` CPU threads (0: leave as is); restored after."""
    if n <= 0 or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; `cuda` without a GPU is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but torch sees no GPU; use 'auto' or 'cpu'")
    return torch.device(name)


@dataclass
class TrainHistory:
    """Per-epoch records of a run and its early-stopping outcome.

    `epochs[i]` has `epoch` (1-based), `loss` (mean training loss), `lr`, `seconds` and, on
    epochs that validated, the validation metrics. `best_epoch` / `best_value` refer to
    `monitor`; `stopped_early` says whether patience ran out (`diverged` if the loss
    became NaN or infinite, which also stops the run), `stopped_by_budget` whether
    `time_budget` ended it.
    """

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    stopped_early: bool = False
    diverged: bool = False
    monitor: str = "ndcg@10"
    stopped_by_budget: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {
            "monitor": self.monitor,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "stopped_early": self.stopped_early,
            "diverged": self.diverged,
            "stopped_by_budget": self.stopped_by_budget,
            "epochs": self.epochs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainHistory:
        """Inverse of `to_dict`."""
        return cls(
            epochs=[dict(e) for e in data.get("epochs", [])],
            best_epoch=data.get("best_epoch"),
            best_value=data.get("best_value"),
            stopped_early=bool(data.get("stopped_early", False)),
            diverged=bool(data.get("diverged", False)),
            monitor=str(data.get("monitor", "ndcg@10")),
            stopped_by_budget=bool(data.get("stopped_by_budget", False)),
        )

    def to_json(self, path: Path | str) -> None:
        """Write the history as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def from_json(cls, path: Path | str) -> TrainHistory:
        """Read a history written by `to_json`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(epochs, values) of one key over the epochs that have it."""
        pairs = [(int(e["epoch"]), float(e[key])) for e in self.epochs if key in e]
        return [p[0] for p in pairs], [p[1] for p in pairs]


def _copy_cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return _copy_cpu(module.state_dict())


class EMA:
    """Exponential moving average of a module's floating-point state: after each step
    `shadow = decay * shadow + (1 - decay) * weights` (Polyak averaging)."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {
            k: v.detach().clone().float()
            for k, v in module.state_dict().items()
            if v.dtype.is_floating_point
        }

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Blend the module's current weights into the average."""
        for k, v in module.state_dict().items():
            if k in self.shadow:
                self.shadow[k].mul_(self.decay).add_(v.detach().float(), alpha=1.0 - self.decay)

    def state(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """The module's state dict with the averaged weights in place of the current ones."""
        state = module.state_dict()
        return {k: self.shadow[k].to(v.dtype) if k in self.shadow else v for k, v in state.items()}


class Trainer:
    """Trains a `TrainTask` as a `TrainConfig` (or a model config with its fields) says.

    Construction checks the device, seeds torch, applies `cfg.init`, moves the module to
    the device and builds the optimiser and schedule. `train_epoch()` runs one epoch (and
    validation when due); `fit()` runs epochs until `cfg.epochs` or early stopping, then
    restores the best (or averaged) weights. With `checkpoint_dir` a checkpoint is written
    after every epoch; `resume=True` continues from it when present.
    """

    def __init__(
        self,
        task: TrainTask,
        cfg: TrainFields,
        checkpoint_dir: Path | str | None = None,
        progress: bool = True,
        resume: bool = False,
    ) -> None:
        self.task = task
        self.cfg = cfg
        self.progress = progress
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.device = resolve_device(cfg.device)
        self.module = task.module
        torch.manual_seed(cfg.seed)
        apply_init(self.module, cfg.init, cfg.init_std)
        self.module.to(self.device)
        task.device = self.device
        self.params = [p for p in self.module.parameters() if p.requires_grad]
        if not self.params:
            raise ConfigError("the model has no trainable parameters")
        self.optimizer = build_optimizer(self.params, cfg)
        self.steps_per_epoch = self._count_steps()
        self.schedule = build_scheduler(self.optimizer, cfg, self.steps_per_epoch)
        self.amp_dtype: torch.dtype | None = None
        self.scaler: torch.amp.GradScaler | None = None
        if cfg.amp:
            if self.device.type == "cuda":
                self.amp_dtype = torch.float16
                self.scaler = torch.amp.GradScaler("cuda")
            else:
                self.amp_dtype = torch.bfloat16
                log.info("amp on CPU: autocast to bfloat16 (no gradient scaling)")
        self.ema = EMA(self.module, cfg.ema_decay) if cfg.ema_decay else None
        self.history = TrainHistory(monitor=cfg.monitor)
        self.epoch = 0
        self._bad_evals = 0
        self._best_state: dict[str, torch.Tensor] | None = None
        self._should_stop = False
        self._finished = False
        if resume:
            self.resume()

    # -- state ---------------------------------------------------------------------------
    @property
    def should_stop(self) -> bool:
        """True once patience ran out or the loss diverged."""
        return self._should_stop

    @property
    def lr(self) -> float:
        """The current learning rate."""
        return self.schedule.lr

    def _count_steps(self) -> int:
        with torch_threads(self.cfg.threads):
            return self._count_steps_inner()

    def _count_steps_inner(self) -> int:
        counter = getattr(self.task, "steps_per_epoch", None)
        if callable(counter):
            return max(1, int(counter(self.cfg.batch_size)))
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed)
        batches = self.task.batches(0, self.cfg.batch_size, gen)
        if isinstance(batches, Sized):
            return max(1, len(batches))
        return max(1, sum(1 for _ in batches))

    # -- one epoch -----------------------------------------------------------------------
    def _penalty(self) -> torch.Tensor | None:
        cfg = self.cfg
        terms = []
        if cfg.l1 > 0:
            terms.append(cfg.l1 * sum(p.abs().sum() for p in self.params))
        if cfg.optimizer == "lbfgs" and cfg.weight_decay > 0:
            terms.append(0.5 * cfg.weight_decay * sum(p.pow(2).sum() for p in self.params))
        if not terms:
            return None
        return torch.stack([torch.as_tensor(t) for t in terms]).sum()

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _objective(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss of the batch, loss plus penalties)."""
        with self._autocast():
            loss = self.task.loss(batch)
        loss = loss.float()
        penalty = self._penalty()
        return loss, loss if penalty is None else loss + penalty

    def _step(self, batch: Any) -> float:
        """One optimiser step on a batch; returns its loss (NaN if it diverged)."""
        cfg = self.cfg
        if cfg.optimizer == "lbfgs":
            first: list[float] = []

            def closure() -> float:
                self.optimizer.zero_grad(set_to_none=True)
                loss, total = self._objective(batch)
                if not first:
                    first.append(float(loss.detach()))
                if torch.isfinite(total):
                    total.backward()
                return float(total.detach())

            self.optimizer.step(closure)
            return first[0] if first else math.nan
        self.optimizer.zero_grad(set_to_none=True)
        loss, total = self._objective(batch)
        if not torch.isfinite(total):
            return math.nan
        if self.scaler is not None:
            self.scaler.scale(total).backward()
            if cfg.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            total.backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
            self.optimizer.step()
        return float(loss.detach())

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """Within the block the module holds the EMA weights (no-op without EMA)."""
        if self.ema is None:
            yield
            return
        current = _snapshot(self.module)
        self.module.load_state_dict(self.ema.state(self.module))
        try:
            yield
        finally:
            self.module.load_state_dict(current)

    def validate(self) -> dict[str, float]:
        """The task's validation metrics with the (averaged) weights, in eval mode."""
        with self.averaged_weights():
            self.module.eval()
            try:
                with torch.no_grad():
                    return {k: float(v) for k, v in self.task.validate().items()}
            finally:
                self.module.train()

    def _due(self, epoch: int) -> bool:
        return epoch % self.cfg.eval_every == 0 or epoch >= self.cfg.epochs

    def train_epoch(self) -> dict[str, float]:
        """One epoch: steps over every batch, then validation when due, early-stopping
        bookkeeping, the epoch step of the schedule and the checkpoint. Returns the
        epoch's record (`epoch`, `loss`, `lr`, `seconds`, validation metrics)."""
        with torch_threads(self.cfg.threads):
            return self._train_epoch()

    def _train_epoch(self) -> dict[str, float]:
        cfg = self.cfg
        e = self.epoch
        torch.manual_seed(cfg.seed * 1_000_003 + e)
        gen = torch.Generator(device=self.device).manual_seed(cfg.seed * 7_919 + e + 1)
        self.module.train()
        t0 = time.perf_counter()
        lr = self.lr
        losses: list[float] = []
        batches: Iterable[Any] = self.task.batches(e, cfg.batch_size, gen)
        inner = None
        if self.progress and self.steps_per_epoch >= 50:
            inner = tqdm(
                batches, total=self.steps_per_epoch, leave=False, desc=f"epoch {e + 1}",
                unit="batch", mininterval=0.5,
            )  # fmt: skip
            batches = inner
        diverged = False
        for batch in batches:
            loss = self._step(batch)
            if not math.isfinite(loss):
                diverged = True
                break
            losses.append(loss)
            self.schedule.step_batch()
            if self.ema is not None:
                self.ema.update(self.module)
            if inner is not None and len(losses) % 20 == 0:
                inner.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if inner is not None:
            inner.close()
        row: dict[str, float] = {
            "epoch": float(e + 1),
            "loss": float(sum(losses) / len(losses)) if losses else math.nan,
            "lr": lr,
        }
        self.epoch = e + 1
        if diverged:
            log.warning("epoch %d: the loss is not finite; stopping (lower lr?)", e + 1)
            self.history.diverged = True
            self._should_stop = True
        elif self._due(self.epoch):
            row.update(self.validate())
        row["seconds"] = time.perf_counter() - t0
        self._track(row)
        self.history.epochs.append(row)
        if self.checkpoint_dir is not None:
            self.save_checkpoint()
        return row

    def _track(self, row: dict[str, float]) -> None:
        """Early stopping and the plateau schedule from an epoch's record."""
        cfg = self.cfg
        if cfg.monitor == "loss":
            value: float | None = -row["loss"] if math.isfinite(row["loss"]) else None
        else:
            metrics = {k for k in row if k not in ("epoch", "loss", "lr", "seconds")}
            if metrics and cfg.monitor not in metrics:
                raise ConfigError(
                    f"monitor {cfg.monitor!r} is not among the validation metrics "
                    f"{', '.join(sorted(metrics))}; set monitor to one of them"
                )
            value = row.get(cfg.monitor)
        if value is not None and math.isfinite(value):
            best = self.history.best_value
            best_cmp = None if best is None else (-best if cfg.monitor == "loss" else best)
            if best_cmp is None or value > best_cmp + cfg.min_delta:
                self.history.best_value = -value if cfg.monitor == "loss" else value
                self.history.best_epoch = int(row["epoch"])
                self._bad_evals = 0
                if cfg.restore_best:
                    state = self.ema.state(self.module) if self.ema else self.module.state_dict()
                    self._best_state = _copy_cpu(state)
            else:
                self._bad_evals += 1
                if cfg.patience and self._bad_evals >= cfg.patience:
                    self._should_stop = True
                    self.history.stopped_early = True
        if not self.history.diverged:
            plateau = value if value is not None else -row["loss"]
            self.schedule.step_epoch(plateau)

    # -- the whole run -------------------------------------------------------------------
    def fit(self) -> TrainHistory:
        """Epochs until `cfg.epochs`, early stopping or the time budget, then `finish()`.

        Without the progress bar, epochs log an INFO line (at most one every 10 s) with the
        time per epoch and the ETA of the remaining ones (what `shelfwise evaluate` shows)."""
        cfg = self.cfg
        bar = tqdm(
            total=cfg.epochs, initial=min(self.epoch, cfg.epochs), disable=not self.progress,
            unit="epoch", desc="train", dynamic_ncols=True,
        )  # fmt: skip
        start = time.perf_counter()
        first_epoch = self.epoch
        last_log = -math.inf
        try:
            while self.epoch < cfg.epochs and not self._should_stop:
                elapsed = time.perf_counter() - start
                done = self.epoch - first_epoch
                if cfg.time_budget is not None and done:
                    per_epoch = elapsed / done
                    if elapsed + per_epoch > cfg.time_budget:
                        log.info(
                            "time budget %.0fs: stopping after epoch %d (%.0fs spent, "
                            "%.1fs an epoch)", cfg.time_budget, self.epoch, elapsed, per_epoch,
                        )  # fmt: skip
                        self.history.stopped_by_budget = True
                        break
                row = self.train_epoch()
                now = time.perf_counter()
                if not self.progress and (now - last_log >= 10.0 or self.epoch >= cfg.epochs):
                    # one line per epoch at most every 10 s: slow models report every epoch
                    self._log_epoch(row, now - start, self.epoch - first_epoch)
                    last_log = now
                post = {"loss": f"{row['loss']:.4f}", "lr": f"{row['lr']:.2e}"}
                if cfg.monitor in row:
                    post[cfg.monitor] = f"{row[cfg.monitor]:.4f}"
                bar.set_postfix(post, refresh=False)
                bar.update(1)
                log.debug("epoch %d: %s", self.epoch, row)
        finally:
            bar.close()
        if self.history.stopped_early:
            log.info(
                "early stop after epoch %d: best %s %.4f at epoch %s",
                self.epoch, cfg.monitor, self.history.best_value or 0.0, self.history.best_epoch,
            )  # fmt: skip
        self.finish()
        return self.history

    def _log_epoch(self, row: Mapping[str, float], elapsed: float, done: int) -> None:
        cfg = self.cfg
        per_epoch = elapsed / max(done, 1)
        left = max(cfg.epochs - self.epoch, 0) * per_epoch
        if cfg.time_budget is not None:
            left = min(left, max(cfg.time_budget - elapsed, 0.0))
        metric = f" {cfg.monitor} {row[cfg.monitor]:.4f}" if cfg.monitor in row else ""
        log.info(
            "epoch %d/%d: loss %.4f%s, %.1fs an epoch, ETA %s",
            self.epoch, cfg.epochs, row["loss"], metric, per_epoch, _clock(left),
        )  # fmt: skip

    def finish(self) -> None:
        """Leave the module with the best validation weights (`restore_best`), else the
        averaged ones (EMA), else as trained; eval mode."""
        if self._best_state is not None and self.cfg.restore_best:
            self.module.load_state_dict(self._best_state)
        elif self.ema is not None:
            self.module.load_state_dict(self.ema.state(self.module))
        self.module.eval()
        self._finished = True

    # -- checkpoints ---------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        """Where the checkpoint lives (None without `checkpoint_dir`)."""
        return None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs."""
        return {
            "format": 1,
            "epoch": self.epoch,
            "config": self.cfg.train_fields(),
            "module": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "ema": self.ema.shadow if self.ema is not None else None,
            "best_state": self._best_state,
            "bad_evals": self._bad_evals,
            "should_stop": self._should_stop,
            "history": self.history.to_dict(),
        }

    def save_checkpoint(self) -> Path:
        """Write the checkpoint (atomically: a temporary file, then a rename)."""
        path = self.checkpoint_path
        if path is None:
            raise ConfigError("no checkpoint_dir was given to the trainer")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(self.state_dict(), tmp)
        tmp.replace(path)
        return path

    def resume(self) -> bool:
        """Continue from the checkpoint if there is one; returns whether one was loaded.

        The checkpoint's training options must match this run's (except `epochs` and
        `device`), else `ConfigError` names the differences.
        """
        path = self.checkpoint_path
        if path is None or not path.exists():
            log.info("no checkpoint to resume from%s", f" at {path}" if path else "")
            return False
        state = torch.load(path, map_location=self.device, weights_only=True)
        saved, now = state["config"], self.cfg.train_fields()
        diff = [
            f"{k}: checkpoint {saved.get(k)!r}, now {now[k]!r}"
            for k in now
            if k not in _RESUME_MAY_DIFFER and saved.get(k) != now[k]
        ]
        if diff:
            raise ConfigError(
                f"cannot resume from {path}: the training options differ ({'; '.join(diff)}); "
                "use the same options or start afresh without --resume"
            )
        self.module.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.shadow = {k: v.to(self.device) for k, v in state["ema"].items()}
        self._best_state = state.get("best_state")
        self._bad_evals = int(state["bad_evals"])
        self._should_stop = bool(state["should_stop"])
        self.history = TrainHistory.from_dict(state["history"])
        self.epoch = int(state["epoch"])
        log.info("resumed from %s after epoch %d", path, self.epoch)
        return True
