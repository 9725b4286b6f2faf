"""Prefect flow `evaluate`: Table 2 of the paper (sec. 6.2) as a generated report.

    test videos + Table 2 rows (`symmv variants`, trained under --variants-dir; and/or checkpoints given)
        -> VMCP (load or train on the train split's real pairs)
        -> generate one piece per video per row -> score quality / VMCP / beat alignment per row
        -> score the Real row (+ real-vs-shuffled check) -> reports/<name>/{README.md, table2.*, evaluation.json, midi/}

Thin wiring over models/evaluation/evaluate.py (the same steps `evaluate_split` runs in plain Python). Its one
parameter is `models.config.EvalConfig`, as `symmv evaluate`'s options and prefect.yaml's parameters are.
"""
from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from models.evaluation import evaluate as E
from models.config import EvalConfig
from models.evaluation import variants as VR

# Tasks hand big Python objects (notes, torch modules) to each other in-process: nothing to cache.
load_songs = task(E.load_eval_songs, name="load-eval-songs", cache_policy=NO_CACHE)
prepare_vmcp = task(E.prepare_vmcp, name="prepare-vmcp", cache_policy=NO_CACHE)
generate_variant = task(E.generate_variant, name="generate-variant", cache_policy=NO_CACHE)
score_variant = task(E.score_variant, name="score-variant", cache_policy=NO_CACHE)
score_real = task(E.score_real, name="score-real", cache_policy=NO_CACHE)
write_evaluation = task(E.write_evaluation, name="write-evaluation", cache_policy=NO_CACHE)


@flow(name="evaluate")
def evaluate(config: EvalConfig = EvalConfig()) -> dict:
    """Evaluate `config.ckpt` as "V-MusProd" (plus `unconditional_ckpt` as "w/o video (unconditional)", plus
    every Table 2 row trained under `variants_dir` by `symmv variants`) on `split`; returns paths and headline
    figures. VMCP (preset `vmcp`: models.evaluation.evaluate.VMCP_PRESETS) is trained on the train split's
    real pairs unless `vmcp_ckpt` holds one; it is saved to `vmcp_ckpt` or <out>/vmcp."""
    log, cfg = get_run_logger(), config
    vmcp_cfg = E.vmcp_preset(cfg.vmcp)
    E.set_threads(cfg)
    songs = load_songs(cfg.data, cfg.split)
    if not songs:
        raise ValueError(f"no {cfg.split} songs with video features and notes under {cfg.data}")
    vmcp_model, vmcp_info = prepare_vmcp(cfg.data, cfg, vmcp_cfg, cfg.vmcp_ckpt or None, str(Path(cfg.out) / "vmcp"))
    log.info("%d %s videos; VMCP: %s", len(songs), cfg.split, vmcp_info.get("source") or vmcp_info.get("skipped"))
    given = E.given_checkpoints(cfg)
    variants = E.variants_for(given, cfg)
    if cfg.variants_dir:
        variants += [v for v in VR.eval_variants(cfg.variants_dir) if v.name not in given]
    pieces, scores = {}, {}
    for v in variants:  # one at a time: generation already uses every core
        pieces[v.name] = generate_variant(songs, v, cfg)
        scores[v.name] = score_variant(songs, pieces[v.name], v, cfg, vmcp_model)
    real = score_real(songs, cfg, vmcp_model)
    provenance = E.build_provenance(cfg.data, songs, variants, vmcp_info, cfg, E.vmcp_m(scores))
    result = write_evaluation(cfg.out, songs, variants, pieces, scores, real, provenance=provenance,
                              vmcp_info=vmcp_info, cfg=cfg, anchor=E.load_anchor(cfg.anchor_json or None))
    log.info("report: %s", result["paths"]["readme"])
    publish_table2_artifact(str(cfg.out), result["paths"]["readme"])
    return {"paths": result["paths"], "M": result["M"], "not_run": sorted(result["not_run"]),
            "rows": {name: E.table_row(s) for name, s in scores.items()}, "real": real["quality"]}


def publish_table2_artifact(out_dir: str, readme: str) -> None:
    """The Table 2 report (its README: every row, VMCP with CIs, provenance) as a Prefect markdown artifact."""
    import re

    from prefect.artifacts import create_markdown_artifact

    key = re.sub(r"[^a-z0-9-]+", "-", Path(out_dir).name.lower()).strip("-") or "report"
    create_markdown_artifact(key=f"table-2-{key}", markdown=Path(readme).read_text(),
                             description=f"Table 2 (sec. 6.2) for {out_dir}")

