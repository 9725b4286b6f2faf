"""The paper's Fig. 3 plots of a build (sec. 3.3): (a) BPM density per genre (KDE), (b) t-SNE of per-video mean
semantic features coloured by genre, (c) chord distribution per genre after transposing every song to C major /
A minor (annotators.stats). Each returns its caption, or None (and why) when the build has nothing to plot."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from symmv.card.reading import _known, genre_of, genre_order

MAX_GENRES_PLOTTED = 6  # Fig. 3 shows 5-6 genres; more curves on one axis stop being readable
CHORD_GENRES = 5  # paper sec. 3.3: "the five most frequent genres and ten chord types"
CHORD_LABELS = 10
TSNE_MIN_VIDEOS = 5


def genre_colors(songs: pd.DataFrame) -> dict[str, object]:
    """One colour per genre shared by all plots (tab10 in genre order; grey for unknown and beyond ten)."""
    import matplotlib

    tab10 = matplotlib.colormaps["tab10"]
    return {g: ("0.6" if g == "(unknown)" or i >= 10 else tab10(i)) for i, g in enumerate(genre_order(songs))}


def _figure(width: float, height: float):
    # a bare Figure renders with Agg and leaves pyplot's global backend and figure list alone (notebook callers)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight", metadata={"Software": None})  # no version stamp: same bytes


def plot_bpm_density(songs: pd.DataFrame, path: Path) -> str | None:
    """Fig. 3(a); returns a caption, or None when there is nothing to plot."""
    from scipy.stats import gaussian_kde

    known = _known(_known(songs, "tempo_bpm"), "genre")
    if not len(known):
        return None
    genres = sorted(known["genre"].value_counts().items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_GENRES_PLOTTED]
    lo, hi = max(0.0, known["tempo_bpm"].min() - 20), known["tempo_bpm"].max() + 20
    grid = np.linspace(lo, hi, 400)
    fig, ax = _figure(9.0, 4.2)
    colors = genre_colors(songs)
    for genre, n in genres:
        bpm = known.loc[known["genre"] == genre, "tempo_bpm"].to_numpy(dtype=float)
        if n >= 3 and np.ptp(bpm) > 0:
            ax.plot(grid, gaussian_kde(bpm)(grid), color=colors[genre], lw=2, label=f"{genre} (n={n})")
        else:  # a KDE of 1-2 songs is a bump, not a density
            ax.hist(bpm, bins=np.arange(lo, hi + 10, 10), density=True, histtype="step", color=colors[genre], lw=1.5,
                    ls="--", label=f"{genre} (n={n}, histogram)")
    ax.set(xlabel="tempo (BPM)", ylabel="density", title="BPM density per genre (paper Fig. 3a)", xlim=(lo, hi))
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never hides data
    _save(fig, path)
    left_out = len(_known(songs, "tempo_bpm")) - len(known)
    return (f"Tempo density per genre (Gaussian KDE; histogram for genres with fewer than 3 songs) over "
            f"{len(known)} songs, top {len(genres)} genres" + (f"; {left_out} songs without a genre left out." if
                                                                left_out else "."))


def plot_chord_distribution(chords: pd.DataFrame, songs: pd.DataFrame, path: Path) -> str | None:
    """Fig. 3(c): share of each transposed chord within a genre, the 10 most frequent chords."""
    if not len(chords) or not len(_known(_known(_known(songs, "key_tonic"), "key_mode"), "genre")):
        return None
    from annotators.stats import chord_distribution

    dist = chord_distribution(chords, songs, top_genres=CHORD_GENRES)
    if dist.empty:
        return None
    labels = dist.mean(axis=0).sort_values(ascending=False, kind="stable").index[:CHORD_LABELS]
    order = genre_order(songs)
    dist = dist.loc[sorted(dist.index, key=order.index), labels]
    fig, ax = _figure(10.0, 4.2)
    colors = genre_colors(songs)
    width = 0.8 / len(dist.index)
    x = np.arange(len(labels))
    for i, genre in enumerate(dist.index):
        ax.bar(x + (i - (len(dist.index) - 1) / 2) * width, dist.loc[genre].to_numpy(), width, color=colors[genre],
               label=genre)
    ax.set_xticks(x, labels)
    ax.set(xlabel="chord (transposed to C major / A minor)", ylabel="share of the genre's chords",
           title="Chord distribution per genre (paper Fig. 3c)")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never hides data
    _save(fig, path)
    return (f"Share of each chord among a genre's chord changes after transposing major songs to C and minor "
            f"songs to A minor; the {len(labels)} most frequent chords, the {len(dist.index)} genres with most songs.")


def plot_semantic_tsne(video: pd.DataFrame, songs: pd.DataFrame, path: Path) -> tuple[str | None, str]:
    """Fig. 3(b): t-SNE of time-averaged semantic features, coloured by genre. (caption, reason if skipped)."""
    if not len(video):
        return None, "no semantic features (`video_features` is absent or empty)"
    encoder = video["semantic_encoder"].fillna("(unknown)").value_counts().index[0]
    video = video[video["semantic_encoder"].fillna("(unknown)") == encoder]
    dims = video["mean_semantic"].map(len)
    video = video[dims == dims.mode().iloc[0]]
    if len(video) < TSNE_MIN_VIDEOS:
        return None, f"only {len(video)} videos with semantic features; t-SNE needs at least {TSNE_MIN_VIDEOS}"
    from sklearn.manifold import TSNE

    features = np.stack(video["mean_semantic"].to_numpy())  # (n_videos, dim)
    perplexity = float(min(30.0, max(1.0, (len(video) - 1) / 3)))  # sklearn requires perplexity < n
    # exact gradients: faster than Barnes-Hut below a few thousand points and deterministic across thread counts
    method = "exact" if len(video) <= 2000 else "barnes_hut"
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", method=method, random_state=0).fit_transform(features)
    genre = video["song_id"].map(genre_of(songs)).fillna("(unknown)").to_numpy()
    colors = genre_colors(songs)
    fig, ax = _figure(8.0, 5.0)
    for g in [g for g in genre_order(songs) if g in set(genre)] + sorted(set(genre) - set(colors)):
        mask = genre == g
        ax.scatter(xy[mask, 0], xy[mask, 1], s=30, color=colors.get(g, "0.6"), label=f"{g} (n={mask.sum()})",
                   alpha=0.85)
    ax.set(xticks=[], yticks=[], title="t-SNE of mean semantic video features by genre (paper Fig. 3b)")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(fig, path)
    return (f"{len(video)} videos, features from `{encoder}` averaged over time, t-SNE perplexity "
            f"{perplexity:.1f}, seed 0."), ""
