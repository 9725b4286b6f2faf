"""SymMV tables -> token windows and batches for the three V-MusProd stages.

Per song we encode once (`SongExample`), then training samples random windows of `window_bars` bars
(validation: consecutive windows covering the song, so its loss is deterministic). A window keeps the
absolute Bar / Timing values of its tokens, starts with BOS and ends with EOS only if it reaches the end
of the song. The melody / accompaniment encoder gets one extra bar on each side (the bar-level mask
looks one bar back and ahead). The chord stage gets the slice of the video features that covers the
same fraction of the piece (bars and frames are mapped proportionally, which is what the Timing
Encoding also assumes; where the build aligned the cover to the video, the bars' start times go through
the stored warping path instead, models/timebase.py), strided to `max_frames`; a song without video gets
the one-frame all-zero "null video" (`TrainConfig.null_video`), so the chord stage can learn its music from the SymMV release,
which ships no videos.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from models import timebase
from models import tokens as tk
from models.config import ModelConfig, TrainConfig
from models.networks.controller import frame_bars, frame_timing, stride_index
from symmv.core.records import Note

TRACKS = ("melody", "accompaniment")


@dataclass
class SongExample:
    song_id: str
    n_bars: int
    tempo_bpm: float | None
    chords: list[tk.ChordEvent]
    melody: list[Note]
    accompaniment: list[Note]
    semantic: np.ndarray | None = None  # (n_frames, semantic_dim)
    color: np.ndarray | None = None  # (n_frames, color_dim)
    stage_tokens: dict = field(default_factory=dict)  # stage -> (decoder tokens, condition tokens | None)
    bar_frame: np.ndarray | None = None  # (n_bars + 1,) video frame at each bar start (aligned songs only)
    meter: int = 4  # beats per bar as the build wrote them (songs.meter): a bar holds 4 * meter 16ths


def load_tables(root: str | Path, splits=("train", "val")) -> dict[str, pd.DataFrame]:
    """The tables the models read, as pandas (Hive-partitioned Parquet under `root`; an absent one is empty)."""
    from symmv.core.shards import load

    return {t: load(t, split=list(splits), root=root)
            for t in ("songs", "notes", "chords", "video_features", "beats", "alignment")}


def concat_tables(*tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Several datasets' tables as one (song ids are unique across SymMV builds: they name the source)."""
    names = set().union(*(t.keys() for t in tables))
    return {n: pd.concat([t[n] for t in tables if n in t and t[n] is not None], ignore_index=True) for n in names}


def frames(cell) -> np.ndarray | None:
    """A list<list<float>> Parquet cell -> (n_frames, dim) float32 (dims come from the data)."""
    if cell is None:
        return None
    arr = np.asarray([np.asarray(row, dtype=np.float32) for row in cell]) if len(cell) else np.zeros((0, 0))
    return arr.astype(np.float32).reshape(len(cell), -1)


def notes_from_frame(df: pd.DataFrame) -> list[Note]:
    return [Note(onset_s=float(r.get("onset_s", 0.0) or 0.0), offset_s=float(r.get("offset_s", 0.0) or 0.0),
                 pitch=int(r["pitch"]), velocity=int(r["velocity"]), track=str(r["track"]), bar=int(r["bar"]),
                 position=int(r["position"]), duration_16th=int(r["duration_16th"]))
            for r in df.to_dict("records")]


def build_examples(tables: dict[str, pd.DataFrame], split: str | None = None) -> list[SongExample]:
    """One SongExample per song with quantized notes (`split` filters on the songs' split column)."""
    songs, notes, chords = tables["songs"], tables["notes"], tables["chords"]
    if split is not None and "split" in songs:
        songs = songs[songs["split"] == split]
    notes = notes.dropna(subset=["bar", "position", "duration_16th"])
    notes = notes[notes["track"].isin(TRACKS)]
    notes_by_song = dict(tuple(notes.groupby("song_id")))
    chords_by_song = dict(tuple(chords.dropna(subset=["bar", "position"]).groupby("song_id")))
    video = tables.get("video_features")
    video_by_song = {r["song_id"]: r for r in video.to_dict("records")} if video is not None else {}
    paths, beats = timebase.alignment_by_song(tables.get("alignment")), tables.get("beats")
    downbeats = dict(tuple(beats[beats["beat_in_bar"] == 1].groupby("song_id"))) if beats is not None and len(beats) else {}
    examples = []
    for song in songs.to_dict("records"):
        sid = song["song_id"]
        if sid not in notes_by_song:
            continue
        song_notes = notes_from_frame(notes_by_song[sid])
        song_chords = [tk.ChordEvent(int(r["bar"]), int(r["position"]), int(r["root"]), str(r["quality"]))
                       for r in chords_by_song.get(sid, pd.DataFrame(columns=["bar"])).to_dict("records")]
        v = video_by_song.get(sid)
        tempo, meter = song.get("tempo_bpm"), song.get("meter")
        n_bars = tk.count_bars(song_notes, song_chords)
        examples.append(SongExample(
            song_id=sid, n_bars=n_bars,
            tempo_bpm=None if tempo is None or pd.isna(tempo) else float(tempo), chords=song_chords,
            melody=[n for n in song_notes if n.track == "melody"],
            accompaniment=[n for n in song_notes if n.track == "accompaniment"],
            semantic=frames(v["semantic"]) if v is not None else None,
            color=frames(v["color"]) if v is not None else None,
            bar_frame=aligned_bar_frames(downbeats.get(sid), paths.get(sid), v, n_bars),
            meter=4 if meter is None or pd.isna(meter) else int(meter)))
    return examples


def aligned_bar_frames(downbeats: pd.DataFrame | None, path, video_row, n_bars: int) -> np.ndarray | None:
    """Video frame index at each bar start through the song's alignment path; None (proportional mapping)
    without a path, a video or downbeats."""
    if path is None or video_row is None or downbeats is None:
        return None
    starts = timebase.bar_start_s(downbeats["bar"].to_numpy(), downbeats["time_s"].to_numpy(), n_bars)
    return None if starts is None else timebase.video_time(starts, path) * float(video_row["fps"])


def stage_tokens(ex: SongExample, stage: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(decoder tokens, condition tokens for the encoder or None) of one song for one stage."""
    kw = dict(n_bars=ex.n_bars, tempo_bpm=ex.tempo_bpm)
    if stage == "chord":
        return tk.encode(chords=ex.chords, **kw), None
    if stage == "melody":
        return tk.encode(ex.melody, ex.chords, **kw), tk.encode(chords=ex.chords, bos_eos=False, **kw)
    if stage == "music":  # Video2music / CMT-style: chords and every note in one stream, no condition
        return tk.encode(ex.melody + ex.accompaniment, ex.chords, **kw), None
    if stage == "notes":  # Video2chord2music: melody + accompaniment in one stream over the chords
        return (tk.encode(ex.melody + ex.accompaniment, ex.chords, **kw),
                tk.encode(chords=ex.chords, bos_eos=False, **kw))
    return (tk.encode(ex.accompaniment, ex.chords, **kw),
            tk.encode(ex.melody, ex.chords, bos_eos=False, **kw))


def crop_bars(tokens: np.ndarray, b0: int, b1: int, bos_eos: bool) -> np.ndarray:
    """Tokens of bars [b0, b1); with bos_eos, a BOS first and the EOS if the song ends inside."""
    types, bars = tokens[:, tk.F["type"]], tokens[:, tk.F["bar"]]
    body = tokens[(bars >= b0) & (bars < b1) & (types != tk.BOS) & (types != tk.EOS)]
    if not bos_eos:
        return body
    bos = body[:1].copy() if len(body) else tokens[:1].copy()
    bos[:, : len(tk.ATTRIBUTES)] = 0
    bos[:, tk.F["type"]], bos[:, tk.F["beat"]] = tk.BOS, 0
    eos = tokens[(types == tk.EOS) & (bars < b1)]
    return np.concatenate([bos, body, eos])


def has_video(ex: SongExample) -> bool:
    return ex.semantic is not None and ex.color is not None and len(ex.semantic) > 0 and len(ex.color) > 0


def usable(ex: SongExample, model_cfg: ModelConfig, null_video: bool = False) -> bool:
    if model_cfg.video_conditioned and not null_video:
        return has_video(ex)
    return True


def null_video_window(dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The "no video" memory: one all-zero frame at timing bucket 0, in bar 0 (a bar mask that leaves a
    token no frame lets it see every frame: this one)."""
    return np.zeros((1, dim), np.float32), np.zeros(1, np.int64), np.zeros(1, np.int64)


def video_window(arr: np.ndarray, b0: int, b1: int, n_bars: int, max_frames: int,
                 bar_frame: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames covering bars [b0, b1) (through `bar_frame`, the aligned frame of each bar start, else
    proportionally), strided to max_frames -> (frames, timing buckets, the bar of each frame)."""
    n = len(arr)
    start, end = (bar_frame[b0], bar_frame[b1]) if bar_frame is not None else (b0 / n_bars * n, b1 / n_bars * n)
    f0 = min(n - 1, max(0, int(np.floor(start))))
    f1 = max(f0 + 1, int(np.ceil(end)))
    index = f0 + stride_index(min(f1, n) - f0, max_frames)
    return arr[index], frame_timing(index, n), frame_bars(index, n, n_bars, bar_frame)


def transpose_tokens(tokens: np.ndarray, semitones: int) -> np.ndarray:
    """Shift Note pitches (kept inside MIDI 0..127 by octaves) and Chord roots by `semitones`."""
    if not semitones or tokens is None or not len(tokens):
        return tokens
    out = tokens.copy()
    types = out[:, tk.F["type"]]
    notes = (types == tk.NOTE) & (out[:, tk.F["pitch"]] > 0)
    pitch = out[notes, tk.F["pitch"]] - 1 + semitones
    pitch = np.where(pitch > 127, pitch - 12, np.where(pitch < 0, pitch + 12, pitch))
    out[notes, tk.F["pitch"]] = pitch + 1
    rooted = (types == tk.CHORD) & (out[:, tk.F["root"]] >= 1) & (out[:, tk.F["root"]] <= 12)
    out[rooted, tk.F["root"]] = (out[rooted, tk.F["root"]] - 1 + semitones) % 12 + 1
    return out


def make_window(ex: SongExample, b0: int, model_cfg: ModelConfig, window_bars: int, semitones: int = 0) -> dict:
    stage = model_cfg.stage
    if stage not in ex.stage_tokens:
        ex.stage_tokens[stage] = stage_tokens(ex, stage)
    dec, cond = ex.stage_tokens[stage]
    b1 = b0 + window_bars
    item = {"tokens": transpose_tokens(crop_bars(dec, b0, b1, bos_eos=True)[: model_cfg.block_size + 1], semitones)}
    if cond is not None:
        item["cond_tokens"] = transpose_tokens(crop_bars(cond, b0 - 1, b1 + 1, bos_eos=False), semitones)
    if model_cfg.video_conditioned:
        c = model_cfg.controller
        for name, dim in (("semantic", c.semantic_dim), ("color", c.color_dim)):
            item[name], item[f"{name}_timing"], item[f"{name}_bars"] = (
                video_window(getattr(ex, name), b0, min(b1, ex.n_bars), ex.n_bars, c.max_frames, ex.bar_frame)
                if has_video(ex) else null_video_window(dim))
    return item


def windows(examples: list[SongExample], model_cfg: ModelConfig, train_cfg: TrainConfig,
            rng: np.random.Generator | None) -> list[dict]:
    """rng given: `windows_per_song` random crops per song (a share `opening_share` of them from the first
    bar), each transposed by a random shift in
    [-transpose, transpose] semitones (the key is not what the stages should memorise; 300-800 songs
    are few); rng None: consecutive untransposed crops (validation),
    at most `max_val_windows` of them, evenly spread over the songs."""
    W, items = train_cfg.window_bars, []
    for ex in examples:
        if not usable(ex, model_cfg, train_cfg.null_video) or ex.n_bars == 0:
            continue
        if rng is None:
            starts, shifts = range(0, ex.n_bars, W), [0] * len(range(0, ex.n_bars, W))
        else:
            starts = rng.integers(0, max(1, ex.n_bars - W + 1), size=train_cfg.windows_per_song)
            if train_cfg.opening_share:  # a piece's opening bars
                starts[rng.random(len(starts)) < train_cfg.opening_share] = 0
            # Transposing the music but not the video would teach the model that the video says nothing about
            # the key (its colours, sec. 6.4): stages that read the video train in the original keys.
            k = 0 if model_cfg.video_conditioned else train_cfg.transpose
            shifts = rng.integers(-k, k + 1, size=len(starts)) if k else [0] * len(starts)
        items.extend(make_window(ex, int(b0), model_cfg, W, int(s)) for b0, s in zip(starts, shifts))
    if rng is None and train_cfg.max_val_windows and len(items) > train_cfg.max_val_windows:
        keep = np.linspace(0, len(items) - 1, train_cfg.max_val_windows).round().astype(int)
        items = [items[i] for i in keep]
    return items


def pad_stack(arrays: list[np.ndarray], dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (T_i, ...) arrays with zeros -> (B, T_max, ...) tensor and (B, T_max) validity."""
    T = max(len(a) for a in arrays)
    out = np.zeros((len(arrays), T, *arrays[0].shape[1:]), dtype=dtype)
    valid = np.zeros((len(arrays), T), dtype=bool)
    for i, a in enumerate(arrays):
        out[i, : len(a)], valid[i, : len(a)] = a, True
    return torch.from_numpy(out), torch.from_numpy(valid)


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    batch = {"tokens": pad_stack([it["tokens"] for it in items], np.int64)[0]}  # PAD rows are all zeros
    if "cond_tokens" in items[0]:
        batch["cond_tokens"] = pad_stack([it["cond_tokens"] for it in items], np.int64)[0]
    for name in ("semantic", "color"):
        if name in items[0]:
            batch[name], batch[f"{name}_valid"] = pad_stack([it[name] for it in items], np.float32)
            batch[f"{name}_timing"] = pad_stack([it[f"{name}_timing"] for it in items], np.int64)[0]
            batch[f"{name}_bars"] = pad_stack([it[f"{name}_bars"] for it in items], np.int64)[0]
    return batch


def batches(items: list[dict], batch_size: int, rng: np.random.Generator | None = None):
    order = rng.permutation(len(items)) if rng is not None else np.arange(len(items))
    for i in range(0, len(items), batch_size):
        yield collate([items[j] for j in order[i: i + batch_size]])


def to_device(batch: dict, device: str) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
