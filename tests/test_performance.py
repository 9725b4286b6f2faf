"""Form plan (models/generation/form.py), dynamics model (models/generation/dynamics.py), the Grammar's bar restatement and
`symmv promote`, on tiny hand-made songs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models import tokens as tk
from models.config import configs_for
from models.training.data import SongExample
from models.generation.dynamics import fit_dynamics
from models.generation.form import FormModel, latest_repeats, song_form
from models.generation.sample import Grammar, SamplingConfig, sample_sequence
from models.networks.transformers import build_model
from symmv.core.records import Note


def note(bar, pos, pitch, dur=4, track="melody", velocity=80):
    s16 = 0.125
    onset = (bar * 16 + pos) * s16
    return Note(onset, onset + dur * s16, pitch, velocity, track, bar, pos, dur)


def test_latest_repeats_points_at_the_latest_occurrence_and_skips_empty_bars():
    a, b, empty = frozenset({1}), frozenset({2}), frozenset()
    assert latest_repeats([a, b, a, empty, b, a, empty]) == [-1, -1, 0, -1, 1, 2, -1]


def test_song_form_and_sampled_window():
    melody = [note(b, 0, p) for b, p in enumerate([60, 62, 60, 64, 60, 62])]
    chords = [tk.ChordEvent(b, 0, r, "M") for b, r in enumerate([0, 7, 0, 5, 0, 7])]
    form = song_form(chords, melody, [], 6)
    assert form["melody"] == [-1, -1, 0, -1, 2, 1] and form["chord"] == [-1, -1, 0, -1, 2, 1]
    assert form["rhythm"] == [-1, 0, 1, 2, 3, 4]  # every bar has one onset, on the downbeat
    ex = SongExample("s", 6, 120.0, chords, melody, [])
    model = FormModel.fit([ex])
    # a window of 3 bars from bar 2: bar 4 (its bar 2) restates bar 2 (its bar 0); from bar 3: bar 5 restates 1 -> new
    plans = [model.sample(3, np.random.default_rng(seed)) for seed in range(40)]
    for plan in plans:
        assert all(0 <= s < b < 3 for layer in plan.values() for b, s in layer.items())
    assert {0: -1} not in plans
    assert any(plan["melody"] == {2: 0} for plan in plans)  # windows from bar 0 and from bar 2
    assert {} in [plan["melody"] for plan in plans]  # the window from bar 3: bar 5's source, bar 1, is outside


def tiny_melody_stage(seed: int, n_bars: int = 4):
    """An untrained tiny melody stage over C major in every bar -> (model, its context, the chords)."""
    torch.manual_seed(seed)
    model = build_model(configs_for("melody", "tiny")[0])
    chords = [tk.ChordEvent(b, 0, 0, "M") for b in range(n_bars)]
    cond = torch.as_tensor(tk.encode(chords=chords, n_bars=n_bars, tempo_bpm=120.0, bos_eos=False))[None]
    return model, model.context({"cond_tokens": cond}), chords


def test_grammar_restates_a_bar_and_closes_it():
    model, ctx, chords = tiny_melody_stage(seed=0)
    sampling = SamplingConfig(temperature=1.0, top_p=1.0)
    grammar = Grammar("melody", 4, 120.0, chords, pitch_range=(60, 72), repeat_of={2: 0, 3: 1})
    seq = sample_sequence(model, ctx, grammar, sampling, seed=3)
    notes = tk.decode_notes(seq, tempo_bpm=120.0)
    by_bar = {b: sorted((n.position, n.pitch, n.duration_16th) for n in notes if n.bar == b) for b in range(4)}
    assert by_bar[0] and by_bar[2] == by_bar[0] and by_bar[3] == by_bar[1]
    assert seq[-1][0] == tk.EOS
    copied = seq[seq[:, tk.F["bar"]] == 2]
    assert set(copied[:, tk.F["timing"]]) == {tk.timing_bucket(2, 4)}  # re-stamped to its own bar


def test_grammar_restates_a_rhythm_with_new_pitches_over_the_bars_own_chords():
    torch.manual_seed(1)
    cfg, _ = configs_for("accompaniment", "tiny")
    model = build_model(cfg)
    chords = [tk.ChordEvent(0, 0, 0, "M"), tk.ChordEvent(1, 0, 7, "M"), tk.ChordEvent(1, 8, 9, "m")]
    melody = [note(b, 0, 84, 16) for b in range(2)]
    cond = torch.as_tensor(tk.encode(melody, chords, n_bars=2, tempo_bpm=120.0, bos_eos=False))[None]
    ctx = model.context({"cond_tokens": cond})
    onsets = {}
    for seed in range(6):
        grammar = Grammar("accompaniment", 2, 120.0, chords, pitch_range=(40, 83), melody=melody,
                          max_notes_per_onset=3, rhythm_of={1: 0})
        seq = sample_sequence(model, ctx, grammar, SamplingConfig(temperature=1.0, top_p=1.0), seed=seed)
        notes = tk.decode_notes(seq, tempo_bpm=120.0)
        bar0 = sorted((n.position, n.duration_16th) for n in notes if n.bar == 0)
        bar1 = sorted((n.position, n.duration_16th) for n in notes if n.bar == 1)
        assert bar0 and bar1 == bar0  # the same onsets, notes per onset and durations
        assert all(n.pitch < 84 for n in notes)  # still under the melody
        got = [tk.decode_chords(seq[seq[:, tk.F["bar"]] == 1])]
        assert [(c.position, c.root) for c in got[0]] == [(0, 7), (8, 9)]  # bar 1's own chords, in place
        onsets[seed] = ([n.pitch for n in notes if n.bar == 0], [n.pitch for n in notes if n.bar == 1])
    assert any(a != b for a, b in onsets.values())  # the pitches are sampled anew


def test_dynamics_learns_accents_and_levels():
    rng = np.random.default_rng(0)
    songs = []
    for s in range(30):
        level = 50 + 3 * s  # touch differs per song
        notes = []
        for b in range(8):
            for pos in range(16):
                v = level + (15 if pos == 0 else 0) + rng.normal(0, 3)
                notes.append(note(b, pos, 60 + (pos * 5) % 12, 1, "melody", int(round(v))))
                notes.append(note(b, pos, 48 + (pos * 7) % 5, 1, "accompaniment", int(round(v - 10))))
        songs.append(notes)
    model = fit_dynamics(songs)
    w = dict(zip(model.features, model.weights))
    assert w["downbeat"] == pytest.approx(15, abs=2) and w["melody"] == pytest.approx(10, abs=2)
    levels = [p[0] for p in model.profiles]
    assert min(levels) < 60 < 120 < max(levels) + 10 and all(2 < p[2] < 4 for p in model.profiles)  # noise sd 3
    out = model.apply([note(0, 0, 70), note(0, 2, 70), note(0, 2, 50, track="accompaniment")], seed=1)
    assert all(1 <= n.velocity <= 127 for n in out)
    again = model.apply([note(0, 0, 70), note(0, 2, 70), note(0, 2, 50, track="accompaniment")], seed=1)
    assert [n.velocity for n in out] == [n.velocity for n in again]  # seeded


def test_dynamics_round_trip(tmp_path):
    songs = [[note(b, p, 60 + p, 2, velocity=60 + p) for b in range(4) for p in range(0, 16, 4)] for _ in range(3)]
    model = fit_dynamics(songs)
    model.save(tmp_path / "dynamics.json")
    again = type(model).load(tmp_path / "dynamics.json")
    assert again == model and json.loads((tmp_path / "dynamics.json").read_text())["n_songs"] == 3


def test_promote_copies_a_finished_run_and_refuses_an_unfinished_one(tmp_path):
    from models.networks.checkpoint import promote

    run, shipped = tmp_path / "run", tmp_path / "shipped"
    for stage in ("chord", "melody", "accompaniment"):
        (run / stage).mkdir(parents=True)
        for f in ("model.safetensors", "config.json", "training.json", "last.safetensors"):
            (run / stage / f).write_text(f"{stage}/{f}")
    (run / "form.json").write_text("{}")
    (shipped / "chord").mkdir(parents=True)
    (shipped / "chord" / "mine.txt").write_text("a user's file")
    (run / "accompaniment" / "training.json").unlink()
    with pytest.raises(ValueError, match="accompaniment/training.json"):
        promote(run, shipped)
    assert not (shipped / "melody").exists()  # nothing written
    (run / "accompaniment" / "training.json").write_text("done")
    written = promote(run, shipped)
    assert (shipped / "melody" / "model.safetensors").read_text() == "melody/model.safetensors"
    assert not (shipped / "melody" / "last.safetensors").exists()  # the resume point stays in the run
    assert (shipped / "chord" / "mine.txt").read_text() == "a user's file"
    assert (shipped / "form.json").is_file() and len(written) == 10  # 3 x 3 stage files + form.json
    assert not list(shipped.rglob("*.promote-tmp"))


def test_shipped_checkpoints_play_with_dynamics_form_and_a_moving_melody():
    """The shipped folder carries every performance model and a 30 s piece uses them (seeded)."""
    from models.generation.generate import SHIPPED_CHECKPOINTS, generate_music, performance_models
    from models.evaluation import realism

    found = performance_models(SHIPPED_CHECKPOINTS)
    assert {"form", "dynamics", "contour", "articulation", "key", "harmony.melody", "harmony.accompaniment"} <= set(found)
    notes = generate_music({"video_tempo_bpm": 110.0, "duration_s": 30.0}, SHIPPED_CHECKPOINTS, seed=7)
    assert len({n.velocity for n in notes}) > 10  # learned dynamics, not two constants
    stats = realism.piece_statistics(notes)
    assert stats["melody_range"] >= 12 and stats["interval_repeat_share"] < 0.8  # not one held pitch
    flat = generate_music({"video_tempo_bpm": 110.0, "duration_s": 30.0}, SHIPPED_CHECKPOINTS, seed=7,
                          sampling=SamplingConfig(dynamics=False))
    assert {n.velocity for n in flat} <= {90, 70}  # switched off: the old constants


def test_calibration_histograms_and_continuation_odds():
    from models.training.calibrate import QUALITY_ROWS, continuation_log_odds, histograms
    from models.generation.contour import MAX_INTERVAL, interval_class

    melody = [note(0, 0, 64, 8), note(0, 8, 67, 8)]  # E then G over C major: +3
    acc = [note(0, 0, 48, 16, "accompaniment"), note(0, 0, 55, 16, "accompaniment"), note(0, 8, 52, 8, "accompaniment")]
    h = histograms(melody, acc, [tk.ChordEvent(0, 0, 0, "M")])
    assert h["contour"][interval_class(None), 3 + MAX_INTERVAL] == 1 and h["contour"].sum() == 1
    assert h["harmony.melody"][QUALITY_ROWS.index("M"), [4, 7]].tolist() == [1, 1]
    assert h["scale.melody"].tolist() == [2, 0] and h["scale.accompaniment"].tolist() == [3, 0]
    assert h["below"][[16, 9, 15]].tolist() == [1, 1, 1]  # under E: 48, 55; under G: 52
    assert h["onset_size"][[1, 2]].tolist() == [1, 1] and h["register.accompaniment"][[48, 52, 55]].sum() == 3
    more = np.array([0, 10, 30, 10, 0.0])  # data: mostly 2-note onsets; generated: mostly single notes
    fewer = np.array([0, 40, 8, 2, 0.0])
    odds = continuation_log_odds(more, fewer)
    assert odds[0] == 0 and odds[1] > 1  # "one more note" after the first is pushed up


def test_calibrated_onset_correction_steers_the_melody_ioi():
    from models.generation.contour import HarmonyModel
    from models.training.calibrate import QUALITY_ROWS

    model, ctx, chords = tiny_melody_stage(seed=2)
    ioi = [-8.0] * 33
    ioi[4] = 0.0  # only a quarter-note step is left unpenalised
    harmony = HarmonyModel(qualities=list(QUALITY_ROWS), log_ratio=[[0.0] * 12] * len(QUALITY_ROWS), ioi_log_ratio=ioi)
    def quarter_share(weight: float) -> float:
        steps = []
        for seed in range(3):
            grammar = Grammar("melody", 4, 120.0, chords, pitch_range=(60, 72), harmony=harmony, harmony_weight=weight)
            notes = tk.decode_notes(sample_sequence(model, ctx, grammar, SamplingConfig(temperature=1.0, top_p=1.0), seed))
            steps += list(np.diff(sorted(n.bar * 16 + n.position for n in notes)))
        return float(np.mean(np.array(steps) == 4))

    # (the chord on each downbeat still forces an onset there, so not every step can be a quarter)
    assert quarter_share(1.0) > 0.6 and quarter_share(1.0) > quarter_share(0.0) + 0.3
