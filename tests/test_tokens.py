import numpy as np

from models import tokens as tk
from model_fixtures import synthetic_tables
from models.training.data import build_examples
from symmv.core.records import Note


def note(bar, pos, pitch, dur, track="melody"):
    return Note(onset_s=0.0, offset_s=0.0, pitch=pitch, velocity=80, track=track, bar=bar, position=pos,
                duration_16th=dur)


def grid(notes):
    return sorted((n.bar, n.position, n.pitch, n.duration_16th) for n in notes)


def test_known_sequence_for_a_two_bar_piece():
    notes = [note(0, 0, 60, 4), note(0, 0, 64, 4), note(0, 6, 67, 2)]  # bar 1 is empty
    chords = [tk.ChordEvent(0, 0, 0, "M"), tk.ChordEvent(1, 8, -1, "N")]
    tokens = tk.encode(notes, chords, tempo_bpm=120)
    assert [tk.describe(t) for t in tokens] == [
        "BOS @bar0 beat0",
        "RHYTHM Bar @bar0 beat0",
        "RHYTHM Pos0 @bar0 beat1",
        "CHORD r0 M @bar0 beat1",
        "NOTE p60 d4 @bar0 beat1",
        "NOTE p64 d4 @bar0 beat1",
        "RHYTHM Pos6 @bar0 beat7",
        "NOTE p67 d2 @bar0 beat7",
        "RHYTHM Bar @bar1 beat0",
        "RHYTHM Pos8 @bar1 beat9",
        "CHORD r-1 N @bar1 beat9",
        "EOS @bar1 beat0",
    ]
    assert tokens[3, tk.F["root"]] == 1 and tokens[10, tk.F["root"]] == tk.NO_ROOT
    assert set(tokens[:, tk.F["tempo"]]) == {tk.tempo_bucket(120)}
    assert tokens[-1, tk.F["timing"]] == tk.N_TIMING // 2  # bar 1 of 2


def test_round_trip_is_lossless_on_the_16th_grid():
    rng = np.random.default_rng(1)
    notes = [note(int(rng.integers(0, 12)), int(rng.integers(0, 16)), int(p), int(rng.integers(1, 65)))
             for p in rng.choice(np.arange(0, 128), size=120)]
    notes += [note(3, 15, 0, 1), note(3, 15, 127, 64), note(11, 0, 60, 1)]  # extremes
    notes = list({(n.bar, n.position, n.pitch): n for n in notes}.values())  # one note per (slot, pitch)
    chords = [tk.ChordEvent(b, p, r, q) for b, p, r, q in
              [(0, 0, 0, "M"), (1, 4, 9, "m7"), (2, 0, -1, "N"), (2, 8, -1, "X"), (5, 12, 11, "sus4")]]
    tokens = tk.encode(notes, chords, tempo_bpm=97)
    assert grid(tk.decode_notes(tokens)) == grid(notes)
    assert sorted(tk.decode_chords(tokens), key=lambda c: (c.bar, c.position)) == chords
    # every attribute a token's type does not use is 0
    used = tk.ATTRIBUTES_USED[tokens[:, 0]]
    assert (tokens[:, : len(tk.ATTRIBUTES)][~used] == 0).all()


def test_onsets_follow_the_tempo_and_long_notes_are_clipped():
    tokens = tk.encode([note(2, 4, 60, 100), note(0, 16, 61, 1)], tempo_bpm=120)  # position 16: off grid
    (n,) = tk.decode_notes(tokens, tempo_bpm=120, track="melody")
    assert n.duration_16th == tk.MAX_DURATION_16TH
    assert np.isclose(n.onset_s, (2 * 16 + 4) * 0.125) and np.isclose(n.offset_s - n.onset_s, 64 * 0.125)


def test_bars_advance_by_one_and_buckets():
    tokens = tk.encode([note(4, 0, 60, 1)])
    bar_tokens = tokens[(tokens[:, 0] == tk.RHYTHM) & (tokens[:, 1] == tk.BAR), tk.F["bar"]]
    assert list(bar_tokens) == [0, 1, 2, 3, 4]
    assert tk.tempo_bucket(None) == 0 and tk.tempo_bucket(40) == 1 and tk.tempo_bucket(500) == tk.N_TEMPO - 1
    assert tk.timing_bucket(0, 10) == 0 and tk.timing_bucket(9, 10) == int(9 * tk.N_TIMING / 10)


def test_synthetic_dataset_round_trips():
    for ex in build_examples(synthetic_tables(n_songs=4)):
        tokens = tk.encode(ex.melody + ex.accompaniment, ex.chords, n_bars=ex.n_bars, tempo_bpm=ex.tempo_bpm)
        assert grid(tk.decode_notes(tokens)) == grid(ex.melody + ex.accompaniment)
        assert tk.decode_chords(tokens) == ex.chords


def test_a_three_four_song_is_read_in_its_own_bars():
    """A 3/4 song's bars hold 12 sixteenths (songs.meter = 3): encoded as written, decoded back to its times."""
    tables = synthetic_tables(n_songs=2)
    songs, notes = tables["songs"].copy(), tables["notes"].copy()
    waltz = songs["song_id"].iloc[0]
    songs["meter"] = [3, 4]
    notes = notes[(notes["song_id"] != waltz) | (notes["position"] < 12)].copy()
    s16 = 60.0 / 100.0 / 4  # a 100 BPM waltz: onset = (12 * bar + position) sixteenths
    mine = notes["song_id"] == waltz
    notes.loc[mine, "onset_s"] = (12 * notes.loc[mine, "bar"] + notes.loc[mine, "position"]) * s16
    examples = {ex.song_id: ex for ex in build_examples({**tables, "songs": songs, "notes": notes})}
    ex = examples[waltz]
    assert ex.meter == 3 and examples[songs["song_id"].iloc[1]].meter == 4
    tokens = tk.encode(ex.melody, n_bars=ex.n_bars, tempo_bpm=100)
    positions = tokens[tokens[:, tk.F["type"]] == tk.NOTE, tk.F["beat"]] - 1
    assert positions.max() < 12 and (tokens[:, tk.F["barbeat"]] == tk.BAR).sum() == ex.n_bars
    decoded = tk.decode_notes(tokens, tempo_bpm=100, steps_per_bar=4 * ex.meter, track="melody")
    assert grid(decoded) == grid(ex.melody)
    truth = sorted(n.onset_s for n in ex.melody)
    assert np.allclose(sorted(n.onset_s for n in decoded), truth)
    sixteen = tk.decode_notes(tokens, tempo_bpm=100)  # read as 16-step bars, the later bars drift
    assert not np.allclose(sorted(n.onset_s for n in sixteen), truth)
