"""Objective evaluation of V-MusProd (paper sec. 6.2): Table 2 as a generated report.

    evaluate_split("data/symmv-demo", {"V-MusProd": "checkpoints/tiny"}, "reports/demo", split="test")

For every video of the split (its `video_features` row) each model variant generates a piece; we score
    - music quality (models/evaluation/metrics.py: SC, PE, PCE, EBR, IOI) per piece and averaged, next to the Real
      row = the same metrics on the split's ground-truth notes (and, when given, the public-release anchor
      of models/evaluation/eval_release.py);
    - VMCP (models/evaluation/vmcp.py, sec. 5.2): a video-music CLIP model trained (tiny config) on the train split's
      real pairs, or loaded, ranks each conditioning video among M = min(m, n videos) candidates; plus the
      real-vs-shuffled check on the split's held-out real pairs, which says whether that VMCP model
      measures correspondence at all;
    - beat alignment (not in the paper): shot boundaries vs the piece's downbeats / note onsets, against
      the chance level of randomly placed cuts.
`write_evaluation` writes table2.{md,json,png} (models/evaluation/report.py), evaluation.json (every per-piece
figure), README.md (the report) and the generated MIDI under `<out_dir>/midi/<variant>/`.

Variants are the Table 2 rows of models/evaluation/variants.py trained under `variants_dir` (`python -m
models.evaluation.variants`: V-MusProd, w/o semantic / color / motion / video, Video2music, Video2chord2music, CMT),
plus any checkpoint directory given by name in `ckpt_dirs` (`<dir>/{chord,melody,accompaniment}/`, e.g.
the shipped models/checkpoints/cpu as "V-MusProd", or an unconditional one as "w/o video (unconditional)").
A "V-MusProd" given that way also gets one inference-only row, "fixed tempo" (the tempo half of "w/o
motion": the tempo is fixed, the Timing Encoding stays). Registry rows neither given nor trained are
listed as not run, with the command that trains them.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from models import timebase
from models.evaluation import variants as VR
from models.evaluation.variants import Variant
from models.evaluation import vmcp as V
from models.networks.checkpoint import load_model, read_config
from models.config import DEFAULT_TEMPO_BPM, STAGES, EvalConfig
from models.training.data import frames
from models.generation.generate import bars_for, generate_music, motion_range_of, tempo_from_motion, write_midi
from models.evaluation.metrics import corpus_metrics, quality_metrics
from models.evaluation.report import write_table2
from symmv.core.records import Beat, Note

MUSIC_TRACKS = ("melody", "accompaniment")

# A VMCP small enough to train on CPU in tens of seconds on the demo's ~13 pairs (the paper's is a
# pretrained music-tagging transformer fine-tuned from ~20k music videos: not available here).
VMCP_TINY = V.VMCPConfig(max_segments=8, audio_dim=32, cnn_channels=(8, 16, 32), d_model=64, n_heads=2,
                         n_layers=1, embed_dim=32, dropout=0.1, batch_size=8, steps=200, lr=1e-3)
# The correspondence benchmark's VMCP (symmv.sources.correspondence, ~800 training pairs): wider, longer
# trained, and it sees colour and motion beside the semantic features (VMCPConfig.video_inputs), since
# there the correspondence is carried by colour <-> harmony and motion <-> rhythm.
VMCP_BENCHMARK = V.VMCPConfig(max_segments=12, audio_dim=64, cnn_channels=(16, 32, 64), d_model=96, n_heads=4,
                              n_layers=1, embed_dim=64, dropout=0.1, batch_size=32, steps=800, lr=1e-3,
                              video_inputs=("semantic", "color", "motion"))
VMCP_PRESETS = {"tiny": VMCP_TINY, "benchmark": VMCP_BENCHMARK}

# Why a Table 2 row (models/evaluation/variants.py ROWS) is absent from a report.
TRAIN_ROWS = "not trained: `symmv variants --data ... --out DIR`, then `symmv evaluate --variants-dir DIR`"
NOT_RUN_EXTRA = {
    "w/o motion": " (a V-MusProd checkpoint given by name runs only its fixed-tempo half, row 'fixed tempo')",
    "w/o video": " (or give an unconditional checkpoint, `symmv train --unconditional`, "
                 "as 'w/o video (unconditional)')",
}


# ----------------------------------------------------------------------------------------------------
# inputs


@dataclass
class EvalSong:
    """One video of the split with its ground-truth music."""

    song_id: str
    video: dict  # the VIDEO_FEATURES row: semantic, color, fps, duration_s, shot_boundaries_s, ...
    notes: list[Note]  # ground truth (melody + accompaniment, or the unsplit piano track)
    beats: list[Beat] = field(default_factory=list)
    tempo_bpm: float | None = None  # of the ground-truth music
    video_tempo_bpm: float | None = None  # motion -> tempo (sec. 4.1), what generation uses

    @property
    def duration_s(self) -> float:
        d = self.video.get("duration_s")
        if d is None or (isinstance(d, float) and math.isnan(d)):
            return float(self.video["n_frames"]) / float(self.video["fps"])
        return float(d)

    @property
    def shot_boundaries_s(self) -> list[float]:
        cuts = self.video.get("shot_boundaries_s")
        return [] if cuts is None else [float(t) for t in cuts]


def _opt_float(x) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def ground_truth_notes(df: pd.DataFrame) -> list[Note]:
    """One song's NOTES rows -> Notes; the skyline's melody+accompaniment if present, else all (unsplit)."""
    split_tracks = df[df["track"].isin(MUSIC_TRACKS)]
    df = split_tracks if len(split_tracks) else df
    grid = lambda v: None if v is None or pd.isna(v) else int(v)  # noqa: E731
    notes = [Note(float(r["onset_s"]), float(r["offset_s"]), int(r["pitch"]), int(r["velocity"]), str(r["track"]),
                  grid(r["bar"]), grid(r["position"]), grid(r["duration_16th"])) for r in df.to_dict("records")]
    return sorted(notes, key=lambda n: (n.onset_s, n.pitch))


def split_names(split: str) -> list[str]:
    """"test" -> ["test"]; "val,test" pools held-out splits (the demo's test split alone has 2 videos)."""
    return [s.strip() for s in split.split(",") if s.strip()]


def load_eval_songs(data_root: str | Path, split: str) -> list[EvalSong]:
    """The split's songs that have video features and notes, in song_id order."""
    from symmv.core.shards import load

    split = split_names(split)
    songs = load("songs", split=split, root=data_root).set_index("song_id")
    notes = dict(tuple(load("notes", split=split, root=data_root).groupby("song_id")))
    beats = dict(tuple(load("beats", split=split, root=data_root).groupby("song_id")))
    videos = load("video_features", split=split, root=data_root)
    # aligned songs: the ground truth moves onto the video's clock, so beat alignment and VMCP's segment
    # pairs compare the music with the video frames it actually plays under (models/timebase.py)
    paths = timebase.alignment_by_song(load("alignment", split=split, root=data_root))
    motion_range, _ = motion_range_of(data_root)  # the build's recorded range, as `symmv generate` uses
    out = []
    for row in videos.to_dict("records"):
        sid = row["song_id"]
        if sid not in notes or sid not in songs.index:
            continue
        song = songs.loc[sid]
        video_tempo = _opt_float(song.get("video_tempo_bpm"))
        if video_tempo is None and row.get("motion_mean") is not None:
            video_tempo = tempo_from_motion(float(row["motion_mean"]), *motion_range)
        song_beats, path = beats.get(sid), paths.get(sid)
        out.append(EvalSong(
            song_id=sid, video=row, notes=timebase.notes_in_video_time(ground_truth_notes(notes[sid]), path),
            beats=[] if song_beats is None else timebase.beats_in_video_time(
                [Beat(float(b.time_s), int(b.bar), int(b.beat_in_bar)) for b in song_beats.itertuples()], path),
            tempo_bpm=_opt_float(song.get("tempo_bpm")), video_tempo_bpm=video_tempo))
    return sorted(out, key=lambda s: s.song_id)


def dataset_label(data_root: str | Path, split: str) -> str:
    """"demo: ..." for the offline demo corpus (its covers are demo:// URLs), else "real: ..."."""
    from symmv.core.shards import load

    urls = load("songs", split=split_names(split), root=data_root, columns=["cover_url"])["cover_url"].dropna().astype(str)
    kind = "demo" if len(urls) and urls.str.startswith("demo://").all() else "real"
    return f"{kind}: {Path(data_root).name} ({split} split)"


# ----------------------------------------------------------------------------------------------------
# variants and generation


def checkpoint_info(ckpt_dir: str | Path) -> dict:
    """What a checkpoint folder holds: per stage, width/depth, video conditioning and training size."""
    info = {}
    for stage in STAGES:
        meta = json.loads((Path(ckpt_dir) / stage / "config.json").read_text())
        cfg = read_config(Path(ckpt_dir) / stage)
        info[stage] = {"d_model": cfg.d_model, "n_layer": cfg.n_layer, "video": bool(cfg.video),
                       "epochs": meta.get("train", {}).get("epochs"), "n_train_songs": meta.get("n_train_songs")}
    return info


def vmcp_preset(name: str) -> V.VMCPConfig:
    if name not in VMCP_PRESETS:
        raise ValueError(f"unknown VMCP preset {name!r}; presets: {', '.join(VMCP_PRESETS)}")
    return VMCP_PRESETS[name]


def given_checkpoints(cfg: EvalConfig) -> dict[str, str]:
    """Row name -> checkpoint folder of the folders an evaluation run names (--ckpt, --unconditional-ckpt)."""
    return {**({"V-MusProd": str(cfg.ckpt)} if cfg.ckpt else {}),
            **({"w/o video (unconditional)": str(cfg.unconditional_ckpt)} if cfg.unconditional_ckpt else {})}


def variants_for(ckpt_dirs: dict[str, str], cfg: EvalConfig) -> list[Variant]:
    """The rows we can generate: one per checkpoint, plus "fixed tempo" on V-MusProd's checkpoint."""
    if "V-MusProd" in ckpt_dirs and not checkpoint_info(ckpt_dirs["V-MusProd"])["chord"]["video"]:
        raise ValueError(f"{ckpt_dirs['V-MusProd']}: its chord stage has no video input; name it "
                         "'w/o video (unconditional)', not 'V-MusProd'")
    variants = [Variant(name, str(path)) for name, path in ckpt_dirs.items()]
    if cfg.fixed_tempo_ablation and "V-MusProd" in ckpt_dirs:
        variants.append(Variant(f"fixed tempo {cfg.fixed_tempo_bpm:g} BPM", str(ckpt_dirs["V-MusProd"]),
                                cfg.fixed_tempo_bpm))
    return variants


def generation_features(song: EvalSong, fixed_tempo_bpm: float | None = None) -> dict:
    """The `generate_music` input of one video; the tempo is resolved here so downbeats can be placed."""
    v = song.video
    semantic, color = frames(v.get("semantic")), frames(v.get("color"))
    motion = v.get("motion")
    return {"semantic": semantic, "color": color, "fps": float(v["fps"]), "duration_s": song.duration_s,
            "video_tempo_bpm": float(fixed_tempo_bpm or song.video_tempo_bpm or DEFAULT_TEMPO_BPM),
            "motion": None if motion is None else np.asarray(motion, np.float64),  # CMT's rhythm rules
            "shot_boundaries_s": song.shot_boundaries_s}


def reads_video(variant: Variant) -> bool:
    """Whether the variant's model reads the video's semantic / color features."""
    if variant.row:
        return VR.ROWS[variant.row].reads_video(variant.ckpt_dir)
    return bool(checkpoint_info(variant.ckpt_dir)["chord"]["video"])


def generate_variant(songs: list[EvalSong], variant: Variant, cfg: EvalConfig) -> list[list[Note]]:
    """One generated piece per song (stages loaded once; song i samples with seed + 3 i)."""
    if reads_video(variant) and not all(has_semantic(s) for s in songs):
        raise ValueError(f"{variant.name}: its model reads video features, and some {cfg.split} videos "
                         "have no semantic features (run build with a semantic encoder)")
    if variant.row:
        row = VR.ROWS[variant.row]
        generate, stage_models = row.generate, row.load(variant.ckpt_dir)
    else:
        generate, stage_models = generate_music, {s: load_model(Path(variant.ckpt_dir) / s) for s in STAGES}
    return [generate(generation_features(song, variant.fixed_tempo_bpm), variant.ckpt_dir,
                     seed=cfg.seed + 3 * i, temperature=cfg.temperature, top_p=cfg.top_p, models=stage_models)
            for i, song in enumerate(songs)]


# ----------------------------------------------------------------------------------------------------
# scores


def piece_quality(notes: list[Note], tempo_bpm: float | None, beats: list[Beat] | None = None) -> dict:
    """quality_metrics with the best time base the piece has (16th grid > tracked beats > tempo)."""
    return {**quality_metrics(notes, tempo_bpm=tempo_bpm, beats=beats or None), "n_notes": len(notes)}


def generated_downbeats_s(tempo_bpm: float, duration_s: float) -> list[float]:
    """Bar starts of a generated piece: it is 4/4 from t = 0 at one tempo (models/generation/generate.py)."""
    bar_s = 240.0 / tempo_bpm
    return [k * bar_s for k in range(bars_for(duration_s, tempo_bpm)) if k * bar_s < duration_s]


def beat_alignment(cuts_s: list[float], events_s: list[float], duration_s: float, sigma_s: float,
                   seed: int) -> dict:
    """Score of shot boundaries vs musical events and the chance level of as many random cuts."""
    if not cuts_s or not events_s:
        return {"score": math.nan, "chance": math.nan, "n_cuts": len(cuts_s)}
    return {"score": V.beat_alignment_score(cuts_s, events_s, sigma_s),
            "chance": V.beat_alignment_chance(len(cuts_s), events_s, duration_s, sigma_s, seed=seed),
            "n_cuts": len(cuts_s)}


def mean_alignment(per_piece: list[dict]) -> dict:
    """Mean score and chance over the videos that have cuts (and events), and how many those were."""
    ok = [p for p in per_piece if not math.isnan(p["score"])]
    if not ok:
        return {"score": math.nan, "chance": math.nan, "n_videos": 0}
    return {"score": float(np.mean([p["score"] for p in ok])), "chance": float(np.mean([p["chance"] for p in ok])),
            "n_videos": len(ok)}


def onsets_s(notes: list[Note]) -> list[float]:
    return sorted({round(n.onset_s, 4) for n in notes})


def score_pieces(songs: list[EvalSong], pieces: list[list[Note]], tempos: list[float | None],
                 downbeats: list[list[float]], cfg: EvalConfig, beats: list[list[Beat]] | None = None) -> dict:
    """Quality per piece and averaged, and beat alignment (downbeats and onsets) per piece and averaged."""
    per_piece = []
    for i, (song, notes) in enumerate(zip(songs, pieces)):
        per_piece.append({
            "song_id": song.song_id, "tempo_bpm": tempos[i],
            **piece_quality(notes, tempos[i], beats[i] if beats else None),
            "beat_alignment_downbeats": beat_alignment(song.shot_boundaries_s, downbeats[i], song.duration_s,
                                                       cfg.sigma_s, cfg.seed + i),
            "beat_alignment_onsets": beat_alignment(song.shot_boundaries_s, onsets_s(notes), song.duration_s,
                                                    cfg.sigma_s, cfg.seed + i)})
    return {"quality": corpus_metrics(per_piece), "per_piece": per_piece,
            "beat_alignment": {kind: mean_alignment([p[f"beat_alignment_{kind}"] for p in per_piece])
                               for kind in ("downbeats", "onsets")}}


def score_variant(songs: list[EvalSong], pieces: list[list[Note]], variant: Variant, cfg: EvalConfig,
                  vmcp_model: V.VMCP | None) -> dict:
    tempos = [generation_features(s, variant.fixed_tempo_bpm)["video_tempo_bpm"] for s in songs]
    downbeats = [generated_downbeats_s(t, s.duration_s) for s, t in zip(songs, tempos)]
    out = score_pieces(songs, pieces, tempos, downbeats, cfg)
    out["vmcp"] = vmcp_of(vmcp_model, songs, pieces, cfg)
    out["chord_video"], out["row"] = reads_video(variant), variant.row
    return out


def score_real(songs: list[EvalSong], cfg: EvalConfig, vmcp_model: V.VMCP | None) -> dict:
    """The Real row (ground truth of the split) and the real-vs-shuffled VMCP check on the same pairs."""
    downbeats = [[b.time_s for b in s.beats if b.is_downbeat] for s in songs]
    out = score_pieces(songs, [s.notes for s in songs], [s.tempo_bpm for s in songs], downbeats, cfg,
                       beats=[s.beats for s in songs])
    out["shuffled_check"] = None
    videos = vmcp_videos(vmcp_model, songs)
    if videos is not None:
        musics = [V.music_clip_from_notes(s.notes) for s in songs]
        out["shuffled_check"] = V.shuffled_pair_check(vmcp_model, videos, musics, cfg.m, cfg.seed)
    return out


def vmcp_videos(model: V.VMCP | None, songs: list[EvalSong]) -> list[V.VideoClip] | None:
    """The songs' videos as VMCP inputs; None without a model, with < 2 videos or without semantic features."""
    if model is None or len(songs) < 2 or not all(has_semantic(s) for s in songs):
        return None
    videos = [V.video_clip_from_row(s.video) for s in songs]
    dim = V.video_segments(videos[0], model.cfg.segment_s, model.cfg.video_inputs).shape[1]
    if dim != model.cfg.video_dim:  # e.g. another semantic encoder
        raise ValueError(f"VMCP was trained on {model.cfg.video_dim}-dim video segments "
                         f"({'+'.join(model.cfg.video_inputs)}), the split gives {dim}; retrain it (no vmcp_ckpt)")
    return videos


def vmcp_of(model: V.VMCP | None, songs: list[EvalSong], pieces: list[list[Note]], cfg: EvalConfig) -> dict | None:
    """VMCP of generated pieces against their conditioning videos (None where `vmcp_videos` is None)."""
    videos = vmcp_videos(model, songs)
    if videos is None:
        return None
    musics = [V.music_clip_from_notes(notes) for notes in pieces]
    return V.vmcp_scores(model, videos, musics, cfg.m, cfg.seed, cfg.n_boot)


# ----------------------------------------------------------------------------------------------------
# the VMCP model


def has_semantic(song: EvalSong) -> bool:
    return song.video.get("semantic") is not None and len(song.video["semantic"]) > 0


def prepare_vmcp(data_root: str | Path, cfg: EvalConfig, vmcp_cfg: V.VMCPConfig = VMCP_TINY,
                 vmcp_ckpt: str | Path | None = None, save_dir: str | Path | None = None) -> tuple[V.VMCP | None, dict]:
    """Load VMCP from `vmcp_ckpt` if it holds one, else train it on the train split's real pairs.

    The trained model is saved to `vmcp_ckpt` (or `save_dir`). Returns (model or None, info); None with
    info["skipped"] when there are not enough pairs with semantic features to train on.
    """
    if vmcp_ckpt is not None and (Path(vmcp_ckpt) / "model.safetensors").exists():
        model = V.load_vmcp(vmcp_ckpt)
        meta = json.loads((Path(vmcp_ckpt) / "config.json").read_text())
        return model, {"source": f"loaded from {vmcp_ckpt}", "audio_encoder": meta["audio_encoder"],
                       "trained_on": meta.get("provenance", {})}
    train = [s for s in load_eval_songs(data_root, cfg.vmcp_train_split) if has_semantic(s)]
    if len(train) < 2:
        return None, {"skipped": f"{len(train)} {cfg.vmcp_train_split} pairs with semantic features; need >= 2"}
    pairs = [(V.video_clip_from_row(s.video), V.music_clip_from_notes(s.notes)) for s in train]
    model = V.train_vmcp(pairs, replace(vmcp_cfg, seed=cfg.seed))
    trained_on = {"data_root": str(data_root), "split": cfg.vmcp_train_split, "n_pairs": len(pairs),
                  "semantic_encoder": sorted({str(s.video.get("semantic_encoder")) for s in train})}
    target = vmcp_ckpt or save_dir
    if target is not None:
        V.save_vmcp(model, target, provenance=trained_on)
    encoder = model.audio_encoder
    return model, {"source": f"trained from scratch on {len(pairs)} {cfg.vmcp_train_split} pairs "
                             f"({vmcp_cfg.steps} steps, seed {cfg.seed})"
                             + (f", saved to {target}" if target else ""),
                   "audio_encoder": f"{encoder.name} {encoder.version}", "trained_on": trained_on,
                   "loss_first_last": [model.history[0], model.history[-1]]}


# ----------------------------------------------------------------------------------------------------
# the report


def vmcp_m(scores: dict[str, dict]) -> int | None:
    """The M the VMCP rows used (one candidate pool for all of them), None when VMCP did not run."""
    return next((s["vmcp"]["M"] for s in scores.values() if s.get("vmcp")), None)


def rows_not_run(scores: dict[str, dict]) -> dict[str, str]:
    """The registry's Table 2 rows (models/evaluation/variants.py) this run did not produce, with why. An unconditional
    checkpoint given by name ("w/o video (unconditional)") stands for the "w/o video" row."""
    ran = set(scores)
    if any(name.startswith("w/o video") or (not s["chord_video"] and not s.get("row")) for name, s in scores.items()):
        ran.add("w/o video")
    return {name: TRAIN_ROWS + NOT_RUN_EXTRA.get(name, "") for name in VR.ROWS if name not in ran}


def row_descriptions(variants: list[Variant]) -> dict[str, str]:
    """What each evaluated row is: the registry's description and folders (with the training budget and
    validation loss of `symmv variants`, from its variants.json), or the checkpoint given."""
    out = {}
    for v in variants:
        tempo = f"tempo fixed at {v.fixed_tempo_bpm:g} BPM" if v.fixed_tempo_bpm else "tempo from the video's motion"
        if v.row:
            row = VR.ROWS[v.row]
            runs = _variants_runs(v.ckpt_dir)
            folders = ", ".join(f"{f}{_run_summary(runs.get(f))}" for f in row.folders.values())
            extra = f"; {', '.join(f'{k}: {type(o).__name__}' for k, o in row.options.items())}" if row.options else ""
            out[v.name] = f"{row.about}; {row.pipeline} pipeline over {v.ckpt_dir}/ {folders}; {tempo}{extra}"
        else:
            video = "video-conditioned" if checkpoint_info(v.ckpt_dir)["chord"]["video"] else "unconditional"
            out[v.name] = (f"checkpoint given: {v.ckpt_dir} (chord stage {video}; chord -> melody -> accompaniment); "
                           f"{tempo}")
    return out


def above_unigram(variants: list[Variant]) -> dict[str, int]:
    """How many of the rows' trained folders (models.evaluation.variants summaries) ended with a validation loss at or
    above the unigram baseline's, i.e. learned less than token frequencies: {"above": n, "of": m}."""
    runs = {}
    for v in variants:
        if v.row:
            summaries = _variants_runs(v.ckpt_dir)
            runs.update({(v.ckpt_dir, f): summaries[f] for f in VR.ROWS[v.row].folders.values() if f in summaries})
    above = [k for k, r in runs.items()
             if r.get("best_val") is not None and r["best_val"] >= r.get("unigram_val", math.inf)]
    return {"above": len(above), "of": len(runs)}


def _variants_runs(ckpt_dir: str | Path) -> dict:
    path = Path(ckpt_dir) / "variants.json"
    return json.loads(path.read_text()).get("summaries", {}) if path.exists() else {}


def _run_summary(summary: dict | None) -> str:
    if not summary:
        return ""
    return (f" ({summary.get('steps')} steps, val {_fmt(summary.get('best_val'), 2)} vs unigram "
            f"{_fmt(summary.get('unigram_val'), 2)})")


def table_row(scores: dict) -> dict:
    """Flatten one variant's scores into the metrics dict write_table2 takes."""
    row = dict(scores["quality"])
    if scores.get("vmcp"):
        row.update({k: v for k, v in scores["vmcp"].items() if k != "ranks"})
    return row


def load_anchor(anchor_json: str | Path | None) -> dict | None:
    """The public-release Real figures of models/evaluation/eval_release.py, if that JSON exists."""
    if anchor_json is None or not Path(anchor_json).exists():
        return None
    report = json.loads(Path(anchor_json).read_text())
    return {**report["ours"], "note": f"{report.get('data', 'SymMV release')}, {report.get('n_pieces')} pieces, "
                                      f"excerpt {report.get('excerpt_s') or 'whole songs'}; from {anchor_json}"}


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def _fmt(x, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def report_markdown(result: dict, table_md: str) -> str:
    """README.md of an evaluation: honesty notes, Table 2, the shuffled check, beat alignment, not-run rows."""
    prov = result["provenance"]
    lines = [f"# Table 2 (Zhuo et al., ICCV 2023, sec. 6.2) on {prov['data']}", ""]
    if prov["data"].startswith("demo"):
        lines += ["**Read this first.** The demo's video-music pairs are arbitrary: its music comes from the "
                  "music21 corpus and its footage from sample clips, so nothing in a video predicts its music. "
                  "VMCP, the real-vs-shuffled check and beat alignment on the demo exercise the code path; they "
                  "do not measure video-music correspondence, and no row can be ranked above another by them. "
                  f"The models are tiny and briefly trained (steps and validation loss below); {result['n_songs']} "
                  "videos are scored.", ""]
    m_line = (f"M = {result['M']} (requested {result['m_requested']}); with few videos the P@K chance levels are "
              "high and the figures are coarse." if result["M"] is not None else "not run (no VMCP model).")
    lines += [f"VMCP candidate pool: {m_line}", "", "## The rows", ""]
    lines += [f"- {name}: {about}" for name, about in result.get("rows", {}).items()] or ["- none"]
    unigram = result.get("above_unigram") or {}
    if unigram.get("above"):
        lines += ["", f"**{unigram['above']} of the {unigram['of']} trained folders ended with a validation loss at "
                  "or above the unigram baseline's**: they have learned less than the tokens' frequencies, so "
                  "their rows' figures describe barely trained models, not the architectures."]
    lines += ["", table_md.replace("# Objective evaluation", "## Objective evaluation", 1), ""]
    check = result["real"]["shuffled_check"]
    lines += ["## Does this VMCP model measure correspondence? (held-out real pairs vs shuffled)", ""]
    if check is None:
        lines += [f"Not run: {result['vmcp_info'].get('skipped', 'fewer than 2 videos in the split')}.", ""]
    else:
        lines += ["| Pairs | P@5 | P@10 | P@20 | AR | AR chance | M |", "|---|---|---|---|---|---|---|"]
        for kind in ("real", "shuffled"):
            s = check[kind]
            lines.append(f"| {kind} | {_fmt(s['P@5'], 1)} | {_fmt(s['P@10'], 1)} | {_fmt(s['P@20'], 1)} | "
                         f"{_fmt(s['AR'], 2)} | {_fmt(s['AR_chance'], 2)} | {s['M']} |")
        lines += ["", "Real pairs should beat chance and shuffled pairs sit at it; if real pairs do not beat "
                  "chance, the VMCP rows above carry no information about correspondence.", ""]
    lines += ["## Beat alignment: shot boundaries vs musical events (not in the paper)", "",
              f"Mean over videos with cuts of exp(-d²/2σ²), σ = {result['config']['sigma_s']} s, d = distance from "
              "each cut to the nearest downbeat / note onset; chance = the same score for as many uniformly "
              "random cuts.", "",
              "| Music | downbeats | chance | onsets | chance | videos with cuts |", "|---|---|---|---|---|---|"]
    for name, scores in [("Real", result["real"]), *result["variants"].items()]:
        d, o = scores["beat_alignment"]["downbeats"], scores["beat_alignment"]["onsets"]
        lines.append(f"| {name} | {_fmt(d['score'])} | {_fmt(d['chance'])} | {_fmt(o['score'])} | "
                     f"{_fmt(o['chance'])} | {max(d['n_videos'], o['n_videos'])} |")
    lines += ["", "## Table 2 rows not run", ""]
    lines += [f"- {name}: {why}" for name, why in result["not_run"].items()] or ["- none"]
    lines += ["", "## Provenance", ""] + [f"- {k}: {v}" for k, v in prov.items()]
    lines += ["", "Files: table2.md / table2.json / table2.png (the table), evaluation.json (every per-piece "
              "figure), midi/<variant>/<song_id>.mid (the generated pieces)."]
    return "\n".join(lines) + "\n"


def write_evaluation(out_dir: str | Path, songs: list[EvalSong], variants: list[Variant],
                     pieces: dict[str, list[list[Note]]], scores: dict[str, dict], real: dict, *,
                     provenance: dict, vmcp_info: dict, cfg: EvalConfig, anchor: dict | None = None) -> dict:
    """Write the generated MIDI, table2.*, evaluation.json and README.md; returns the result dict + paths."""
    out_dir = Path(out_dir)
    for variant in variants:
        folder = out_dir / "midi" / slug(variant.name)
        folder.mkdir(parents=True, exist_ok=True)
        for song, notes, piece in zip(songs, pieces[variant.name], scores[variant.name]["per_piece"]):
            write_midi(notes, folder / f"{song.song_id}.mid", tempo_bpm=piece["tempo_bpm"])
    rows = {name: table_row(s) for name, s in scores.items()}
    if anchor is not None:
        rows["Real (SymMV release anchor)"] = anchor
    not_run = rows_not_run(scores)
    if vmcp_info.get("skipped"):
        not_run["VMCP (all rows)"] = vmcp_info["skipped"]
    result = {"provenance": provenance, "config": asdict(cfg), "M": vmcp_m(scores), "m_requested": cfg.m,
              "n_songs": len(songs), "song_ids": [s.song_id for s in songs], "vmcp_info": vmcp_info,
              "rows": row_descriptions(variants), "above_unigram": above_unigram(variants), "real": real,
              "variants": scores, "not_run": not_run,
              "anchor": anchor}
    paths = write_table2(rows, real["quality"], out_dir, provenance)
    (out_dir / "evaluation.json").write_text(json.dumps(result, indent=1, default=_json_default))
    (out_dir / "README.md").write_text(report_markdown(result, paths["markdown"].read_text()))
    paths.update(evaluation=out_dir / "evaluation.json", readme=out_dir / "README.md", midi=out_dir / "midi")
    return {**result, "paths": {k: str(v) for k, v in paths.items()}}


def _json_default(x):
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serializable: {type(x)}")


def build_provenance(data_root: str | Path, songs: list[EvalSong], variants: list[Variant], vmcp_info: dict,
                     cfg: EvalConfig, m_used: int | None) -> dict:
    semantic = sorted({str(s.video.get("semantic_encoder")) for s in songs})
    ckpts = {}
    for v in variants:  # the fixed-tempo row shares V-MusProd's checkpoint
        if v.row:
            ckpts.setdefault(f"{v.ckpt_dir}:{v.row}", f"{v.name}: {v.ckpt_dir}/{{{','.join(VR.ROWS[v.row].folders.values())}}}")
            continue
        info = checkpoint_info(v.ckpt_dir)
        ckpts.setdefault(v.ckpt_dir, f"{v.ckpt_dir} (d_model {info['chord']['d_model']}, chord video="
                                     f"{info['chord']['video']}, epochs {'/'.join(str(info[s]['epochs']) for s in STAGES)}"
                                     f", {info['chord']['n_train_songs']} train songs)")
    vmcp_source = vmcp_info.get("source", "").split(", saved to")[0]
    return {
        "data": dataset_label(data_root, cfg.split),
        "data_root": str(data_root),
        "n_videos": len(songs),
        "semantic_encoder": ", ".join(semantic),
        "audio_encoder": (f"{vmcp_info['audio_encoder']} (VMCP {V.VMCP_VERSION} {vmcp_source}; fluidsynth + "
                          "TimGM6mb renders)") if "audio_encoder" in vmcp_info
                         else f"none: {vmcp_info.get('skipped')}",
        "seed": cfg.seed,
        "M": m_used if m_used is not None else "VMCP not run",
        "checkpoints": "; ".join(ckpts.values()),
        "sampling": sampling_summary(cfg),
    }


def sampling_summary(cfg: EvalConfig) -> str:
    """How the pieces were sampled, including the per-attribute settings SamplingConfig applies on top."""
    from models.generation.sample import SamplingConfig

    s = SamplingConfig()
    override = ", ".join(f"{a} {v}" for a, v in s.top_p_override.items())
    scale = ", ".join(f"{a} x{v}" for a, v in s.temperature_scale.items())
    return f"temperature {cfg.temperature} ({scale}), top_p {cfg.top_p} ({override})"


# ----------------------------------------------------------------------------------------------------
# the whole evaluation


def eval_config(cfg: EvalConfig | None = None, **overrides) -> EvalConfig:
    known = {f.name for f in fields(EvalConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"unknown evaluation settings {sorted(unknown)}; EvalConfig has {sorted(known)}")
    return replace(cfg or EvalConfig(), **overrides)


def set_threads(cfg: EvalConfig) -> None:
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)


def evaluate_split(data_root: str | Path, ckpt_dirs: dict[str, str], out_dir: str | Path, *,
                   cfg: EvalConfig | None = None, vmcp_cfg: V.VMCPConfig = VMCP_TINY,
                   vmcp_ckpt: str | Path | None = None, anchor_json: str | Path | None = None,
                   variants_dir: str | Path | None = None, rows=tuple(VR.ROWS), **overrides) -> dict:
    """Generate for every video of `split` with every variant, score everything, write the report.

    ckpt_dirs: row name -> checkpoint folder (`<dir>/{chord,melody,accompaniment}/`); the full model is
    named "V-MusProd". variants_dir: a `models.evaluation.variants` checkpoint directory; its `rows` that were trained
    there are evaluated too (a row also given in ckpt_dirs is taken from ckpt_dirs). overrides: EvalConfig fields (split="test", seed=0, m=70, ...). Returns the
    result dict written to evaluation.json, plus "paths".
    """
    cfg = eval_config(cfg, **overrides)
    set_threads(cfg)
    songs = load_eval_songs(data_root, cfg.split)
    if not songs:
        raise ValueError(f"no {cfg.split} songs with video features and notes under {data_root}")
    vmcp_model, vmcp_info = prepare_vmcp(data_root, cfg, vmcp_cfg, vmcp_ckpt, Path(out_dir) / "vmcp")
    variants = variants_for(ckpt_dirs, cfg)
    if variants_dir is not None:
        variants += [v for v in VR.eval_variants(variants_dir, rows) if v.name not in ckpt_dirs]
    pieces = {v.name: generate_variant(songs, v, cfg) for v in variants}
    scores = {v.name: score_variant(songs, pieces[v.name], v, cfg, vmcp_model) for v in variants}
    real = score_real(songs, cfg, vmcp_model)
    provenance = build_provenance(data_root, songs, variants, vmcp_info, cfg, vmcp_m(scores))
    return write_evaluation(out_dir, songs, variants, pieces, scores, real, provenance=provenance,
                            vmcp_info=vmcp_info, cfg=cfg, anchor=load_anchor(anchor_json))
