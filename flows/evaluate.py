"""Prefect flow `evaluate`: Table 2 of the paper (sec. 6.2) as a generated report.

    test videos + Table 2 rows (models/evaluation/variants.py, trained under --variants-dir; and/or checkpoints given)
        -> VMCP (load or train on the train split's real pairs)
        -> generate one piece per video per row -> score quality / VMCP / beat alignment per row
        -> score the Real row (+ real-vs-shuffled check) -> reports/<name>/{README.md, table2.*, evaluation.json, midi/}

Thin wiring over models/evaluation/evaluate.py (the same steps `evaluate_split` runs in plain Python); parameters
map onto `models.evaluation.evaluate.EvalConfig`.
"""
from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from models.evaluation import evaluate as E
from models.evaluation import variants as VR

# Tasks hand big Python objects (notes, torch modules) to each other in-process: nothing to cache.
load_songs = task(E.load_eval_songs, name="load-eval-songs", cache_policy=NO_CACHE)
prepare_vmcp = task(E.prepare_vmcp, name="prepare-vmcp", cache_policy=NO_CACHE)
generate_variant = task(E.generate_variant, name="generate-variant", cache_policy=NO_CACHE)
score_variant = task(E.score_variant, name="score-variant", cache_policy=NO_CACHE)
score_real = task(E.score_real, name="score-real", cache_policy=NO_CACHE)
write_evaluation = task(E.write_evaluation, name="write-evaluation", cache_policy=NO_CACHE)


@flow(name="evaluate")
def evaluate(data_root: str = "data/symmv-demo", ckpt_dir: str | None = "checkpoints/tiny", split: str = "test",
             out_dir: str = "reports/demo", seed: int = 0, m: int = 70,
             extra_ckpt_dirs: dict[str, str] | None = None, vmcp_ckpt: str | None = None,
             anchor_json: str | None = None, fixed_tempo_ablation: bool = True, num_threads: int = 0,
             variants_dir: str | None = None, vmcp: str = "tiny") -> dict:
    """Evaluate `ckpt_dir` as "V-MusProd" (plus `extra_ckpt_dirs`, e.g. {"w/o video (unconditional)": dir},
    plus every Table 2 row trained under `variants_dir` by `python -m models.evaluation.variants`) on `split`; returns
    paths and headline figures. VMCP (preset `vmcp`: models.evaluation.evaluate.VMCP_PRESETS) is trained on the train
    split's real pairs unless `vmcp_ckpt` holds one; it is saved to `vmcp_ckpt` or <out_dir>/vmcp."""
    log = get_run_logger()
    cfg = E.eval_config(split=split, seed=seed, m=m, fixed_tempo_ablation=fixed_tempo_ablation,
                        num_threads=num_threads)
    E.set_threads(cfg)
    songs = load_songs(data_root, cfg.split)
    if not songs:
        raise ValueError(f"no {split} songs with video features and notes under {data_root}")
    vmcp_model, vmcp_info = prepare_vmcp(data_root, cfg, E.VMCP_PRESETS[vmcp], vmcp_ckpt, str(Path(out_dir) / "vmcp"))
    log.info("%d %s videos; VMCP: %s", len(songs), split, vmcp_info.get("source") or vmcp_info.get("skipped"))
    given = {**({"V-MusProd": ckpt_dir} if ckpt_dir else {}), **(extra_ckpt_dirs or {})}
    variants = E.variants_for(given, cfg)
    if variants_dir:
        variants += [v for v in VR.eval_variants(variants_dir) if v.name not in given]
    pieces, scores = {}, {}
    for v in variants:  # one at a time: generation already uses every core
        pieces[v.name] = generate_variant(songs, v, cfg)
        scores[v.name] = score_variant(songs, pieces[v.name], v, cfg, vmcp_model)
    real = score_real(songs, cfg, vmcp_model)
    provenance = E.build_provenance(data_root, songs, variants, vmcp_info, cfg, E.vmcp_m(scores))
    result = write_evaluation(out_dir, songs, variants, pieces, scores, real, provenance=provenance,
                              vmcp_info=vmcp_info, cfg=cfg, anchor=E.load_anchor(anchor_json))
    log.info("report: %s", result["paths"]["readme"])
    publish_table2_artifact(out_dir, result["paths"]["readme"])
    return {"paths": result["paths"], "M": result["M"], "not_run": sorted(result["not_run"]),
            "rows": {name: E.table_row(s) for name, s in scores.items()}, "real": real["quality"]}


def publish_table2_artifact(out_dir: str, readme: str) -> None:
    """The Table 2 report (its README: every row, VMCP with CIs, provenance) as a Prefect markdown artifact."""
    import re

    from prefect.artifacts import create_markdown_artifact

    key = re.sub(r"[^a-z0-9-]+", "-", Path(out_dir).name.lower()).strip("-") or "report"
    create_markdown_artifact(key=f"table-2-{key}", markdown=Path(readme).read_text(),
                             description=f"Table 2 (sec. 6.2) for {out_dir}")


if __name__ == "__main__":
    import argparse
    import json

    p = argparse.ArgumentParser(description="Prefect flow evaluate (Table 2 as a report)")
    p.add_argument("--data", default="data/symmv-demo")
    p.add_argument("--ckpt", default="checkpoints/tiny", help="V-MusProd checkpoint ('' = only --variants-dir rows)")
    p.add_argument("--variants-dir", help="checkpoint directory of `python -m models.evaluation.variants`: all its Table 2 rows")
    p.add_argument("--vmcp", default="tiny", choices=["tiny", "benchmark"], help="VMCP preset (models.evaluation.evaluate.VMCP_PRESETS)")
    p.add_argument("--split", default="test"), p.add_argument("--out", default="reports/demo")
    p.add_argument("--seed", type=int, default=0), p.add_argument("--m", type=int, default=70)
    p.add_argument("--unconditional-ckpt", help="checkpoint whose chord stage was trained with --unconditional")
    p.add_argument("--vmcp-ckpt"), p.add_argument("--anchor-json", help="models.evaluation.eval_release JSON (Real anchor)")
    p.add_argument("--no-fixed-tempo", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    a = p.parse_args()
    from symmv.pipeline.config import prefect_defaults

    prefect_defaults()
    extra = {"w/o video (unconditional)": a.unconditional_ckpt} if a.unconditional_ckpt else None
    out = evaluate(a.data, a.ckpt or None, a.split, a.out, a.seed, a.m, extra, a.vmcp_ckpt, a.anchor_json,
                   not a.no_fixed_tempo, a.threads, a.variants_dir, a.vmcp)
    print(json.dumps({k: out[k] for k in ("paths", "M", "not_run")}, indent=1))
