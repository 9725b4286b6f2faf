"""Table-2-shaped evaluation report (paper sec. 6.2): Markdown + JSON + PNG.

    write_table2(rows={"V-MusProd": {...}, "w/o color": {...}}, real={"SC": ...}, out_dir="out/eval",
                 provenance={"data": "demo", "semantic_encoder": "...", "audio_encoder": "cnn 1", "seed": 0})

Columns as in the paper: P@5, P@10, P@20, AR (VMCP, sec. 5.2) and SC, PE, PCE, EBR, IOI (music quality,
models/evaluation/metrics.py). Music-quality cells also give |value - Real| since "closer to Real is better". Every
artefact carries the provenance (which data: demo or real; which encoder backends; seed), and the
paper's own Table 2 is printed beside ours, labelled as the paper's, never mixed into our rows.
"""
from __future__ import annotations

import textwrap

import json
import math
from pathlib import Path

VMCP_COLUMNS = ("P@5", "P@10", "P@20", "AR")
QUALITY_COLUMNS = ("SC", "PE", "PCE", "EBR", "IOI")
COLUMNS = VMCP_COLUMNS + QUALITY_COLUMNS
REQUIRED_PROVENANCE = ("data", "semantic_encoder", "audio_encoder", "seed")

# Table 2 of Zhuo et al. (ICCV 2023), for reference only.
PAPER_TABLE2 = {
    "Real (SymMV)": {"SC": 0.986, "PE": 4.197, "PCE": 2.633, "EBR": 0.023, "IOI": 0.184},
    "CMT": {"P@5": 8.9, "P@10": 17.7, "P@20": 31.0, "AR": 33.4, "SC": 0.990, "PE": 3.920, "PCE": 2.444, "EBR": 0.074, "IOI": 0.246},
    "w/o semantic": {"P@5": 11.6, "P@10": 23.9, "P@20": 42.0, "AR": 26.1, "SC": 0.955, "PE": 2.892, "PCE": 2.310, "EBR": 0.019, "IOI": 0.358},
    "w/o color": {"P@5": 15.6, "P@10": 26.6, "P@20": 44.8, "AR": 25.1, "SC": 0.956, "PE": 2.732, "PCE": 2.200, "EBR": 0.011, "IOI": 0.330},
    "w/o motion": {"P@5": 12.2, "P@10": 22.2, "P@20": 37.9, "AR": 26.3, "SC": 0.975, "PE": 3.010, "PCE": 2.283, "EBR": 0.004, "IOI": 0.261},
    "Video2music": {"P@5": 10.8, "P@10": 19.7, "P@20": 33.3, "AR": 30.0, "SC": 0.981, "PE": 3.990, "PCE": 2.639, "EBR": 0.010, "IOI": 0.229},
    "Video2chord2music": {"P@5": 13.7, "P@10": 23.1, "P@20": 43.6, "AR": 26.0, "SC": 0.996, "PE": 2.497, "PCE": 2.036, "EBR": 0.081, "IOI": 0.985},
    "V-MusProd": {"P@5": 15.7, "P@10": 24.6, "P@20": 44.8, "AR": 25.4, "SC": 0.983, "PE": 3.940, "PCE": 2.607, "EBR": 0.004, "IOI": 0.174},
}


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _fmt(x, digits: int) -> str:
    x = _num(x)
    return "-" if math.isnan(x) else f"{x:.{digits}f}"


def _digits(col: str) -> int:
    return 1 if col in VMCP_COLUMNS else 3


def table2_json(rows: dict[str, dict], real: dict, provenance: dict) -> dict:
    """The report as data: our rows (value, CI, chance, |value - real|), Real, paper's Table 2, provenance."""
    missing = [k for k in REQUIRED_PROVENANCE if k not in provenance]
    if missing:
        raise ValueError(f"provenance must name {missing}: every figure says which data, encoders and seed made it")
    out_rows = {}
    for name, metrics in rows.items():
        row = {}
        for col in COLUMNS:
            cell = {"value": _num(metrics.get(col))}
            if col in VMCP_COLUMNS:
                if f"{col}_ci95" in metrics:
                    cell["ci95"] = [float(v) for v in metrics[f"{col}_ci95"]]
                if f"{col}_chance" in metrics:
                    cell["chance"] = float(metrics[f"{col}_chance"])
            elif col in real:
                cell["abs_diff_to_real"] = abs(cell["value"] - float(real[col]))
            row[col] = cell
        for extra in ("M", "n_pieces_vmcp", "n_pieces_quality", "note"):
            if extra in metrics:
                row[extra] = metrics[extra]
        out_rows[name] = row
    return {"columns": list(COLUMNS), "real": {k: float(real[k]) for k in QUALITY_COLUMNS if k in real},
            "rows": out_rows, "provenance": provenance, "paper_table2": PAPER_TABLE2}


def _provenance_line(provenance: dict) -> str:
    return "; ".join(f"{k}: {provenance[k]}" for k in provenance)


def table2_markdown(report: dict) -> str:
    cols = report["columns"]
    lines = ["# Objective evaluation (shaped like Table 2 of Zhuo et al., ICCV 2023)", "",
             f"**Provenance** — {_provenance_line(report['provenance'])}", "",
             "P@K in percent (higher is better), AR = average rank (lower is better), [bootstrap 95% CI over "
             "pieces], chance levels in the Chance rows; music quality: value (|value − Real|), closer to Real "
             "is better; IOI in seconds, EBR per beat.", "",
             "| Method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    real = report["real"]
    lines.append("| Real | " + " | ".join("-" if c in VMCP_COLUMNS else _fmt(real.get(c), 3) for c in cols) + " |")
    for name, row in report["rows"].items():
        cells = []
        for c in cols:
            cell = row[c]
            text = _fmt(cell["value"], _digits(c))
            if "ci95" in cell:
                text += f" [{_fmt(cell['ci95'][0], 1)}, {_fmt(cell['ci95'][1], 1)}]"
            if "abs_diff_to_real" in cell and not math.isnan(cell["abs_diff_to_real"]):
                text += f" ({cell['abs_diff_to_real']:.3f})"
            cells.append(text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    chance_rows = {(row.get("M"), tuple(row[c].get("chance") for c in VMCP_COLUMNS))
                   for row in report["rows"].values() if any("chance" in row[c] for c in VMCP_COLUMNS)}
    for m_used, chance in sorted(chance_rows, key=lambda x: -(x[0] or 0)):
        cells = [_fmt(v, 1) for v in chance] + ["-"] * len(QUALITY_COLUMNS)
        lines.append(f"| Chance (M = {m_used}) | " + " | ".join(cells) + " |")
    # rows sharing a note or a piece count are named together: 8 rows over the same videos share both
    by_note, by_count = {}, {}
    for name, row in report["rows"].items():
        if "note" in row:
            by_note.setdefault(row["note"], []).append(name)
        by_count.setdefault((row.get("n_pieces_vmcp", "-"), row.get("n_pieces_quality", "-")), []).append(name)
    notes = [f"- {', '.join(names)}: {note}" for note, names in by_note.items()]
    counts = [f"{', '.join(names)}: VMCP over {n_vmcp} pieces, quality over {n_quality} pieces"
              for (n_vmcp, n_quality), names in by_count.items()]
    if counts:
        lines += ["", "Pieces scored — " + "; ".join(counts) + "."]
    if notes:
        lines += ["", *notes]
    lines += ["", "## The paper's Table 2 (their numbers, SymMV test set; for reference, not ours)", "",
              "| Method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in report["paper_table2"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c), _digits(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def table2_figure(report: dict, png_path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["rows"])
    fig, axes = plt.subplots(2, 5, figsize=(17, 7))
    axes[0, 4].axis("off")
    axes[0, 4].text(0, 0.5, "\n".join(f"{k}: {v}" for k, v in report["provenance"].items()), fontsize=8,
                    va="center", wrap=True)
    for ax, col in zip(list(axes[0, :4]) + list(axes[1]), COLUMNS):
        cells = [report["rows"][n][col] for n in names]
        vals = [c["value"] for c in cells]
        err = None
        if all("ci95" in c for c in cells):
            err = [[v - c["ci95"][0] for v, c in zip(vals, cells)], [c["ci95"][1] - v for v, c in zip(vals, cells)]]
        ax.bar(range(len(names)), vals, yerr=err, color="tab:blue", capsize=3)
        # Chance depends on each row's M, so it is drawn per bar, not across the axes.
        for i, c in enumerate(cells):
            if "chance" in c:
                ax.hlines(c["chance"], i - 0.45, i + 0.45, color="black", ls="--", lw=1.2,
                          label="chance" if i == next(j for j, d in enumerate(cells) if "chance" in d) else None)
        if col in report["real"]:
            ax.axhline(report["real"][col], color="tab:red", ls="--", lw=1, label="Real")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
        ax.set_title(col + (" (%)" if col.startswith("P@") else " (s)" if col == "IOI" else ""))
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    # The figure names its data and seed; the full provenance is in the Markdown/JSON beside it.
    short = {k: report["provenance"][k] for k in ("data", "semantic_encoder", "seed") if k in report["provenance"]}
    fig.suptitle("Objective evaluation, Table-2 shape\n" + textwrap.fill(_provenance_line(short), 110), fontsize=9)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path


def write_table2(rows: dict[str, dict], real: dict, out_dir: str | Path, provenance: dict) -> dict[str, Path]:
    """Write table2.md, table2.json and table2.png to out_dir; returns their paths.

    rows: method name -> metrics dict with any of P@5, P@10, P@20, AR (+ "<col>_ci95", "<col>_chance",
    "M", "n_pieces_vmcp", "note" as `models.evaluation.vmcp.vmcp_scores` returns) and SC, PE, PCE, EBR, IOI
    (`models.evaluation.metrics.corpus_metrics`). real: SC..IOI of the real music. provenance must name at least
    data ("demo" / "real: ..."), semantic_encoder, audio_encoder and seed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = table2_json(rows, real, provenance)
    paths = {"json": out_dir / "table2.json", "markdown": out_dir / "table2.md", "png": out_dir / "table2.png"}
    paths["json"].write_text(json.dumps(report, indent=1))
    paths["markdown"].write_text(table2_markdown(report))
    table2_figure(report, paths["png"])
    return paths
