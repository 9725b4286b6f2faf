"""Data-card statistics from tiny songs/chords tables."""
import numpy as np
import pandas as pd

from annotators.stats import chord_distribution, key_distribution, tempo_summary, tempo_values


def tables():
    songs = pd.DataFrame({
        "song_id": ["a", "b", "c", "d"],
        "genre": ["Pop", "Pop", "R&B/Soul", None],
        "key_tonic": [7, 9, 0, 2],  # G major, A minor, C major, D major
        "key_mode": ["major", "minor", "major", "major"],
        "tempo_bpm": [120.0, 100.0, 80.0, 90.0],
    })
    chords = pd.DataFrame({
        "song_id": ["a", "a", "a", "b", "b", "c", "d"],
        "start_s": [0.0, 1.0, 2.0, 0.0, 2.0, 0.0, 0.0],
        "end_s": [1.0, 2.0, 4.0, 2.0, 3.0, 1.0, 1.0],
        "root": [7, 0, -1, 9, 2, 2, 2],
        "quality": ["M", "M", "N", "m", "m7", "m7", "M"],
    })
    return songs, chords


def test_chord_distribution_transposes_to_c_and_a():
    songs, chords = tables()
    dist = chord_distribution(chords, songs)
    # song a in G: G -> C, C -> F; song b in a minor stays; N dropped; song d has no genre
    pop = {k: v for k, v in dist.loc["Pop"].to_dict().items() if v > 0}
    assert pop == {"Am": 0.25, "CM": 0.25, "Dm7": 0.25, "FM": 0.25}
    assert dist.loc["R&B/Soul", "Dm7"] == 1.0
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    by_time = chord_distribution(chords, songs, weight="duration")
    assert by_time.loc["Pop", "Am"] == 2.0 / 5.0


def test_key_distribution_and_tempo():
    songs, _ = tables()
    keys = key_distribution(songs)
    assert keys["n_songs"].sum() == 4 and set(keys["key"]) == {"G major", "a minor", "C major", "D major"}
    per_genre = key_distribution(songs, by_genre=True)
    assert per_genre[per_genre.genre == "Pop"]["share"].sum() == 1.0
    assert len(tempo_values(songs)) == 3
    assert tempo_summary(songs).loc["Pop", "median"] == 110.0
