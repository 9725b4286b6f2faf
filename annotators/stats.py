"""Data-card statistics of the symbolic annotations (paper sec. 3.3, Fig. 3 a/c), from the dataset tables.

Inputs are the pandas DataFrames of the `songs` and `chords` tables (symmv.core.schema.SONGS / CHORDS, as
`symmv.load` returns them). As in the paper, chords are counted after transposing every song to C major
(major keys) or A minor (minor keys) so tonality does not drive the distribution. Songs without a key or a
genre are left out of the tables that need them.
"""
from __future__ import annotations

import pandas as pd

from annotators.chords import NO_CHORD, UNKNOWN, chord_label
from annotators.key import key_name, transposition_semitones

ANNOTATOR_VERSION = "symbolic-stats 1"


def _song_shift(songs: pd.DataFrame) -> pd.Series:
    keyed = songs.dropna(subset=["key_tonic", "key_mode"])
    return pd.Series(
        [transposition_semitones((int(t), m)) for t, m in zip(keyed["key_tonic"], keyed["key_mode"])],
        index=keyed["song_id"].to_numpy(), dtype="int64",
    )


def transposed_chord_labels(chords: pd.DataFrame, songs: pd.DataFrame) -> pd.DataFrame:
    """chords rows (no N / X) of songs with a key, with `label` transposed to C / a (e.g. 'FM', 'Am7')."""
    shift = _song_shift(songs)
    c = chords[~chords["quality"].isin([NO_CHORD, UNKNOWN]) & (chords["root"] >= 0)]
    c = c[c["song_id"].isin(shift.index)].copy()
    roots = (c["root"].astype("int64") + c["song_id"].map(shift)) % 12
    c["label"] = [chord_label(int(r), q, 0, "major") for r, q in zip(roots, c["quality"])]  # spelled in C / a
    return c


def chord_distribution(
    chords: pd.DataFrame, songs: pd.DataFrame, top_genres: int | None = 5, weight: str = "count"
) -> pd.DataFrame:
    """genre x transposed chord label -> share of that genre's chords (rows sum to 1).

    weight: "count" (chord changes, as the paper counts) or "duration" (seconds). top_genres keeps the most
    frequent genres by number of songs (None: all)."""
    if weight not in ("count", "duration"):
        raise ValueError("weight must be 'count' or 'duration'")
    c = transposed_chord_labels(chords, songs)
    genre = songs.dropna(subset=["genre"]).set_index("song_id")["genre"]
    c["genre"] = c["song_id"].map(genre)
    c = c.dropna(subset=["genre"])
    if top_genres is not None:
        keep = genre[genre.index.isin(c["song_id"])].value_counts().index[:top_genres]
        c = c[c["genre"].isin(keep)]
    c["w"] = 1.0 if weight == "count" else (c["end_s"] - c["start_s"])
    table = c.pivot_table(index="genre", columns="label", values="w", aggfunc="sum", fill_value=0.0)
    return table.div(table.sum(axis=1), axis=0)


def key_distribution(songs: pd.DataFrame, by_genre: bool = False) -> pd.DataFrame:
    """Key name (music21 spelling) -> number of songs and share (per genre when by_genre)."""
    keyed = songs.dropna(subset=["key_tonic", "key_mode"]).copy()
    keyed["key"] = [key_name(int(t), m) for t, m in zip(keyed["key_tonic"], keyed["key_mode"])]
    groups = ["genre", "key"] if by_genre else ["key"]
    if by_genre:
        keyed = keyed.dropna(subset=["genre"])
    out = keyed.groupby(groups).size().rename("n_songs").reset_index()
    total = out.groupby("genre")["n_songs"].transform("sum") if by_genre else out["n_songs"].sum()
    out["share"] = out["n_songs"] / total
    return out.sort_values(groups[:-1] + ["n_songs"], ascending=[True] * (len(groups) - 1) + [False],
                           ignore_index=True)


def tempo_values(songs: pd.DataFrame) -> pd.DataFrame:
    """(genre, song_id, tempo_bpm) rows with both known: the values behind Fig. 3(a)'s densities."""
    return songs.dropna(subset=["genre", "tempo_bpm"])[["genre", "song_id", "tempo_bpm"]].reset_index(drop=True)


def tempo_summary(songs: pd.DataFrame) -> pd.DataFrame:
    """Per genre: n, median, mean, std, min, max of tempo_bpm."""
    v = tempo_values(songs)
    return v.groupby("genre")["tempo_bpm"].agg(["count", "median", "mean", "std", "min", "max"]).rename(
        columns={"count": "n"})
