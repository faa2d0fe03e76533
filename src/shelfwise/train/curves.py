"""Per-epoch training curves as a PNG: loss, validation metric and learning rate."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from shelfwise.train.trainer import TrainHistory


def plot_curves(history: TrainHistory, png_path: Path | str, title: str | None = None) -> Path:
    """Three panels over epochs (training loss, `history.monitor` on validation with the
    best epoch marked, learning rate, log scale) written to `png_path` (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(png_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    x, loss = history.series("loss")
    axes[0].plot(x, loss, marker=".")
    axes[0].set_title("training loss")
    vx, vy = history.series(history.monitor)
    if vx:
        axes[1].plot(vx, vy, marker=".", color="tab:green")
        if history.best_epoch is not None and history.best_value is not None:
            axes[1].axvline(history.best_epoch, color="grey", linestyle=":", linewidth=1)
            axes[1].scatter([history.best_epoch], [history.best_value], color="tab:red", zorder=3)
    else:
        axes[1].text(0.5, 0.5, "no validation", ha="center", va="center",
                     transform=axes[1].transAxes)  # fmt: skip
    axes[1].set_title(f"validation {history.monitor}")
    lx, lr = history.series("lr")
    axes[2].plot(lx, lr, marker=".", color="tab:orange")
    if lr and min(lr) > 0:
        axes[2].set_yscale("log")
    axes[2].set_title("learning rate")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_comparison(
    curves: Mapping[str, TrainHistory],
    png_path: Path | str,
    metric: str = "ndcg@10",
    title: str | None = None,
) -> Path:
    """One line per run of `metric` against epoch (convergence plot of several runs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(png_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 5))
    styles = ("-", "--", ":", "-.")
    for i, (label, history) in enumerate(curves.items()):
        x, y = history.series(metric)
        if x:  # 10 colours per line style, so many runs stay distinguishable
            ax.plot(x, y, marker=".", linestyle=styles[i // 10 % len(styles)], label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {metric}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
