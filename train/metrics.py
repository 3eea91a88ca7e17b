"""Accuracy, per-class precision/recall and the confusion matrix: for training reports and evaluate."""

from __future__ import annotations

import numpy as np


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, num_labels: int) -> np.ndarray:
    """(true label, predicted label) counts."""
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (np.asarray(targets), np.asarray(predictions)), 1)
    return matrix


def report(targets: np.ndarray, predictions: np.ndarray, labels: list[str]) -> dict:
    """The JSON object `speechcmd evaluate --json` prints."""
    matrix = confusion_matrix(targets, predictions, len(labels))
    n = int(matrix.sum())
    correct = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    per_class = {
        label: {
            "precision": round(float(correct[k] / predicted[k]), 4) if predicted[k] else None,
            "recall": round(float(correct[k] / actual[k]), 4) if actual[k] else None,
            "support": int(actual[k]),
        }
        for k, label in enumerate(labels)
    }
    return {
        "accuracy": round(float(correct.sum() / n), 4) if n else None,
        "n": n,
        "per_class": per_class,
        "confusion": {"labels": list(labels), "matrix": matrix.tolist()},
    }


def format_report(result: dict) -> str:
    labels = result["confusion"]["labels"]
    width = max(8, *(len(label) for label in labels))
    lines = [f"accuracy {result['accuracy']:.2%} on {result['n']} clips", ""]
    lines.append(f"{'label':<{width}}  precision  recall  clips")
    for label, stats in result["per_class"].items():
        precision = "-" if stats["precision"] is None else f"{stats['precision']:.2%}"
        recall = "-" if stats["recall"] is None else f"{stats['recall']:.2%}"
        lines.append(f"{label:<{width}}  {precision:>9}  {recall:>6}  {stats['support']:>5}")
    short = [label.strip("_")[:5] for label in labels]
    lines += ["", "confusion (rows: true label, columns: predicted)", " " * width + " " + " ".join(f"{s:>5}" for s in short)]
    for label, row in zip(labels, result["confusion"]["matrix"]):
        lines.append(f"{label:<{width}} " + " ".join(f"{v:>5}" for v in row))
    return "\n".join(lines)


def plot_confusion(result: dict, path, title: str = "Confusion matrix") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = result["confusion"]["labels"]
    matrix = np.array(result["confusion"]["matrix"], dtype=float)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title} (accuracy {result['accuracy']:.1%}, n={result['n']})")
    for (i, j), value in np.ndenumerate(matrix):
        if value:
            ax.text(j, i, int(value), ha="center", va="center", fontsize=7, color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, label="share of the true label")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
