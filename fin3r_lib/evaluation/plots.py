"""PNG plots of an evaluation (matplotlib, Agg): depth maps and errors side by side, trajectory top
view against ground truth, per-frame error curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from fin3r_lib.evaluation.model_level import DepthExample


def plot_depth_examples(path: Path, examples: list[DepthExample], title: str = "") -> Path:
    """Rows of image | GT depth | aligned prediction | |d - d*| / d* for each example."""
    rows = max(1, len(examples))
    fig, axes = plt.subplots(rows, 4, figsize=(14, 3 * rows), squeeze=False)
    for row, ex in zip(axes, examples, strict=False):
        finite = ex.gt[np.isfinite(ex.gt)]
        vmin, vmax = np.percentile(finite, [2, 98]) if len(finite) else (0.0, 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(ex.pred - ex.gt) / ex.gt
        panels = [
            (ex.rgb, None, "image " + ex.name),
            (ex.gt, "viridis", "ground truth"),
            (ex.pred, "viridis", "prediction (aligned)"),
            (rel, "magma", "abs rel error"),
        ]
        for ax, (img, cmap, label) in zip(row, panels, strict=True):
            kwargs = {} if cmap is None else {"cmap": cmap}
            if cmap == "viridis":
                kwargs |= {"vmin": vmin, "vmax": vmax}
            if cmap == "magma":
                kwargs |= {"vmin": 0.0, "vmax": 0.3}
            shown = ax.imshow(img, **kwargs)
            if cmap is not None:
                fig.colorbar(shown, ax=ax, fraction=0.046)
            ax.set_title(label)
            ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_trajectories(path: Path, trajectories: dict[str, np.ndarray], gt: np.ndarray) -> Path:
    """Top view (x, z: OpenCV cameras look along z, y points down) of camera positions (N, 3) vs GT."""
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot(gt[:, 0], gt[:, 2], "k-", linewidth=2, label="ground truth")
    for label, est in trajectories.items():
        ax.plot(est[:, 0], est[:, 2], "-", marker=".", label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("z")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend()
    ax.set_title("trajectory, top view (aligned to GT)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_error_curves(path: Path, curves: dict[str, list[float]], ylabel: str) -> Path:
    """One curve per run of a per-frame error."""
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for label, values in curves.items():
        ax.plot(np.arange(len(values)), values, marker=".", label=label)
    ax.set_xlabel("frame")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
