"""Two PNG plots from report rows: accuracy per category per regime, and accuracy vs extraction calls."""

from __future__ import annotations

from pathlib import Path

from evals.aggregate import TABLE_COLUMNS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(row: dict) -> str:
    return f"{row['run']}:{row['regime']}" if row.get("run") else row["regime"]


def plot_accuracy_by_category(table: list[dict], path: Path) -> Path:
    plt = _pyplot()
    columns = [c for c in TABLE_COLUMNS if any(row.get(c) is not None for row in table)]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(columns) + 2), 4))
    width = 0.8 / max(len(table), 1)
    for i, row in enumerate(table):
        xs = [j + i * width for j in range(len(columns))]
        ax.bar(xs, [row.get(c) or 0.0 for c in columns], width=width, label=_label(row))
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(columns))], columns, rotation=45, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    if table:
        ax.legend(fontsize="small")
    ax.set_title("Accuracy per category and regime")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_accuracy_vs_calls(table: list[dict], cost: list[dict], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    costs = {(c.get("run"), c["regime"]): c for c in cost}
    for row in table:
        c = costs.get((row.get("run"), row["regime"]), {})
        scored = [row.get(col) for col in ("In-domain avg", "MMStar avg") if row.get(col) is not None]
        if not scored:
            continue
        x, y = c.get("extraction_calls") or 0.0, sum(scored) / len(scored)
        ax.scatter([x], [y])
        ax.annotate(_label(row), (x, y), textcoords="offset points", xytext=(4, 4), fontsize="small")
    ax.set_xlabel("mean extraction calls per sample")
    ax.set_ylabel("accuracy (%), mean of benchmark averages")
    ax.set_title("Accuracy vs perception calls")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
