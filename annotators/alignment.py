"""Cover <-> official-video time alignment: chroma + onset features, DTW, a warping path with a confidence.

The paper pairs a cover with its official video but never aligns them (sec. 3.1): a cover's 8-s intro or
its own tempo shifts music second t away from video second t for the whole song, while V-MusProd's Timing
Encoding and VMCP's segment loss assume they coincide. The video carries the original recording, so the
cover (piano) is aligned to the video's soundtrack (any instrumentation):

    alignment = align(cover_audio, video_audio, sample_rate, song_id="...")
    alignment.video_time(cover_times_s)            # cover seconds -> video seconds (cover_time: the inverse)
    low_confidence(alignment) -> "low_confidence" | None

Features, as in synctoolbox's chroma + DLNCO recipe (Mueller et al.), simplified: the harmonic part of a
CQT (median-filter HPSS, so the video's drums do not smear the chroma), folded to chroma and normalized per
frame (timbre-robust: a piano and a band playing the same chords share it), plus decaying locally normalized
chroma onsets, which sharpen the path at note onsets. Cost: cosine distance on both, summed. Leading and
trailing silence of either signal is cut before DTW (a silent tail cannot be matched and drags the path). DTW:
librosa.sequence.dtw with subsequence matching (the cover may start and end anywhere in the video: intros,
outros, a cover that skips nothing but the video has a spoken prelude), step sizes (1,1),(1,2),(2,1)
weighted so that a tempo ratio up to 2x either way is reachable.

Confidence (in [0, 1]): the share of the cover's path frames whose chroma cost lies in the lowest
`MATCH_QUANTILE` of all cost-matrix cells. An aligned pair runs along the matrix's valley of low costs; an
unrelated pair has no valley and the optimal path still has to cross ordinary cells. Threshold measured in
bench/bench_alignment.py: see LOW_CONFIDENCE.

Limits: the whole (non-silent) cover is mapped into the video; subsequence matching frees only the video's
ends. Cover material the video lacks (a talking intro, an extra chorus) is forced onto neighbouring video
frames and lowers the confidence; skipped or reordered sections need a segment-level alignment. The bench's
soundtracks are GM re-renders of the same notes (no vocals, no mix, no key change): real official audio is
harder, so measure the confidence distribution on real pairs before trusting LOW_CONFIDENCE there.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from symmv.core import schema as _schema

ANNOTATOR_VERSION = "align-chroma-dlnco-dtw 1"
METHOD = "chroma_cqt+dlnco, subsequence DTW (librosa)"

FEATURE_RATE_HZ = 25.0  # 40-ms frames: path quantization +-20 ms, cost matrix of a 5-min song ~ 7500^2 cells
PATH_STEP_S = 0.5  # the stored path is resampled every 0.5 s of cover time
MATCH_QUANTILE = 0.10  # "low cost" = among the lowest 10% of the cost matrix
LOW_CONFIDENCE = 0.4  # below: no alignment (bench: aligned pairs >= 0.57, median 0.79; unrelated <= 0.23)
SILENCE_DB = -40.0  # frames this far below the loudest are silence when trimming the ends (room tone, hiss)
# DTW holds ~20 bytes per cell (cost, accumulated cost, step index): 30M cells ~ 0.6 GB, i.e. two 3.6-min
# signals at 25 Hz; longer pairs are aligned on a coarser grid (a 5-min pair at ~18 Hz, 55-ms frames)
MAX_CELLS = 30_000_000

ALIGNMENT_SCHEMA = _schema.ALIGNMENT  # declared in symmv.core.schema


@dataclass(frozen=True)
class Alignment:
    song_id: str
    cover_time_s: np.ndarray  # (K,) increasing
    video_time_s: np.ndarray  # (K,) non-decreasing
    confidence: float
    method: str = METHOD

    def video_time(self, cover_time_s):
        """Map cover seconds to video seconds (linear between path samples, constant slope 1 outside)."""
        t = np.asarray(cover_time_s, np.float64)
        inside = np.interp(t, self.cover_time_s, self.video_time_s)
        before = self.video_time_s[0] + (t - self.cover_time_s[0])
        after = self.video_time_s[-1] + (t - self.cover_time_s[-1])
        return np.where(t < self.cover_time_s[0], before, np.where(t > self.cover_time_s[-1], after, inside))

    def cover_time(self, video_time_s):
        """The inverse map, video seconds -> cover seconds (what a video frame hears), same extrapolation."""
        t = np.asarray(video_time_s, np.float64)
        inside = np.interp(t, self.video_time_s, self.cover_time_s)
        before = self.cover_time_s[0] + (t - self.video_time_s[0])
        after = self.cover_time_s[-1] + (t - self.video_time_s[-1])
        return np.where(t < self.video_time_s[0], before, np.where(t > self.video_time_s[-1], after, inside))

    def row(self) -> dict:
        return {"song_id": self.song_id, "cover_time_s": self.cover_time_s.astype(np.float32).tolist(),
                "video_time_s": self.video_time_s.astype(np.float32).tolist(),
                "confidence": float(self.confidence), "method": self.method}


def _hop(sample_rate: int, rate_hz: float) -> int:
    # librosa's CQT wants the hop to be a multiple of 2**(n_octaves - 1); 7 octaves -> 64
    return max(64, int(round(sample_rate / rate_hz / 64)) * 64)


def sync_features(audio: np.ndarray, sample_rate: int, rate_hz: float = FEATURE_RATE_HZ) -> tuple[np.ndarray, np.ndarray, float]:
    """(chroma (12, T) unit-norm, dlnco (12, T) unit-norm, frame_s) of the harmonic part of the audio."""
    import librosa

    hop = _hop(sample_rate, rate_hz)
    audio = np.asarray(audio, np.float32)
    cqt = np.abs(librosa.cqt(audio, sr=sample_rate, hop_length=hop, fmin=librosa.note_to_hz("A0"),
                             n_bins=84, bins_per_octave=12))
    # harmonic part (librosa's kernel_size = (harmonic: 31 frames ~ 1.2 s along time, percussive: 9 bins along
    # frequency)): on the bench, drums otherwise pull the path off by seconds (p95 1.5 s -> 0.2 s without pair 9)
    cqt, _ = librosa.decompose.hpss(cqt, kernel_size=(31, 9))
    log_cqt = np.log1p(100.0 * cqt)  # compressed, so loud bass notes do not own the chroma
    chroma = np.zeros((12, log_cqt.shape[1]))
    for b in range(log_cqt.shape[0]):
        chroma[(b + 9) % 12] += log_cqt[b]  # bin 0 is A
    chroma = _unit(chroma)
    # DLNCO-like: half-wave-rectified chroma increase, locally normalized, then decayed over ~0.2 s
    onset = np.maximum(0.0, np.diff(np.concatenate([np.zeros((84, 1)), log_cqt], axis=1), axis=1))
    onset_chroma = np.zeros_like(chroma)
    for b in range(84):
        onset_chroma[(b + 9) % 12] += onset[b]
    frame_s = hop / sample_rate
    local_max = _running_max(onset_chroma.max(axis=0), int(round(1.0 / frame_s)))
    onset_chroma = onset_chroma / np.maximum(local_max, 1e-6)
    decay = np.exp(-frame_s / 0.1) ** np.arange(int(round(0.2 / frame_s)) + 1)
    from scipy.signal import lfilter

    dlnco = lfilter(decay, [1.0], onset_chroma, axis=1)
    return chroma, _unit(dlnco), frame_s


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=0, keepdims=True)
    out = x / np.maximum(norm, 1e-9)
    out[:, norm[0] < 1e-9] = 1.0 / np.sqrt(12)  # silence: equidistant from every chord
    return out


def _running_max(x: np.ndarray, width: int) -> np.ndarray:
    from scipy.ndimage import maximum_filter1d

    return maximum_filter1d(x, size=max(1, width), mode="nearest")


def active_range(audio: np.ndarray, sample_rate: int, frame_s: float) -> tuple[int, int]:
    """[first, last + 1) feature frames louder than SILENCE_DB below the peak (the whole range if none)."""
    hop = max(1, int(round(frame_s * sample_rate)))
    n = int(np.ceil(len(audio) / hop))
    frames = np.pad(np.asarray(audio, np.float64), (0, n * hop - len(audio))).reshape(n, hop)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    loud = np.flatnonzero(level > level.max() + SILENCE_DB)
    return (int(loud[0]), int(loud[-1]) + 1) if loud.size else (0, n)


def align(cover_audio: np.ndarray, video_audio: np.ndarray, sample_rate: int, song_id: str = "",
          rate_hz: float = FEATURE_RATE_HZ) -> Alignment:
    """Align the cover (query) into the video soundtrack (reference). Both mono float, same sample rate."""
    import librosa

    n_cover, n_video = len(cover_audio) / sample_rate * rate_hz, len(video_audio) / sample_rate * rate_hz
    if n_cover * n_video > MAX_CELLS:  # keep memory bounded on long songs: a coarser grid
        rate_hz = rate_hz * np.sqrt(MAX_CELLS / (n_cover * n_video))
    chroma_c, onset_c, frame_s = sync_features(cover_audio, sample_rate, rate_hz)
    chroma_v, onset_v, _ = sync_features(video_audio, sample_rate, rate_hz)
    c0, c1 = active_range(cover_audio, sample_rate, frame_s)
    v0, v1 = active_range(video_audio, sample_rate, frame_s)
    c1, v1 = min(c1, chroma_c.shape[1]), min(v1, chroma_v.shape[1])
    chroma_c, onset_c = chroma_c[:, c0:c1], onset_c[:, c0:c1]
    chroma_v, onset_v = chroma_v[:, v0:v1], onset_v[:, v0:v1]
    cost = 2.0 - chroma_c.T @ chroma_v  # (Tc, Tv): cosine distances of chroma and of onsets, summed in place
    cost -= onset_c.T @ onset_v
    _, path = librosa.sequence.dtw(C=cost, subseq=True, step_sizes_sigma=np.array([[1, 1], [1, 2], [2, 1]]),
                                   weights_add=np.array([0.0, 0.0, 0.0]), weights_mul=np.array([1.0, 2.0, 2.0]))
    # librosa's backtracking with (2, 1)/(1, 2) steps can end one cell past the matrix: clip to it
    path = np.minimum(path[::-1], np.array(cost.shape) - 1)  # (L, 2) increasing: (cover frame, video frame)
    confidence = path_confidence(chroma_c, chroma_v, path)
    cover_t, video_t = _resample_path(path + np.array([c0, v0]), frame_s)
    return Alignment(song_id=song_id, cover_time_s=cover_t, video_time_s=video_t, confidence=confidence)


def path_confidence(chroma_cover: np.ndarray, chroma_video: np.ndarray, path: np.ndarray,
                    quantile: float = MATCH_QUANTILE, n_sample: int = 200_000) -> float:
    """Share of path cells (one per cover frame) whose chroma cost is in the lowest `quantile` of all cells.

    The quantile comes from `n_sample` random cells (seeded: the same pair gives the same confidence), so no
    second full-size matrix is held beside the DTW's."""
    rng = np.random.default_rng(0)
    i = rng.integers(0, chroma_cover.shape[1], n_sample)
    j = rng.integers(0, chroma_video.shape[1], n_sample)
    cut = np.quantile(1.0 - np.einsum("ct,ct->t", chroma_cover[:, i], chroma_video[:, j]), quantile)
    _, first = np.unique(path[:, 0], return_index=True)  # one cell per cover frame: slow passages weigh the same
    a, b = path[first, 0], path[first, 1]
    on_path = 1.0 - np.einsum("ct,ct->t", chroma_cover[:, a], chroma_video[:, b])
    return float(np.mean(on_path <= cut))


def _resample_path(path: np.ndarray, frame_s: float, step_s: float = PATH_STEP_S) -> tuple[np.ndarray, np.ndarray]:
    """Path cells -> (cover_time_s, video_time_s) every `step_s`, frame centres, monotone."""
    cover_f, idx = np.unique(path[:, 0], return_index=True)
    # a horizontal run (one cover frame, several video frames) maps to the middle of the run
    counts = np.diff(np.append(idx, len(path)))
    video_f = np.array([path[i:i + c, 1].mean() for i, c in zip(idx, counts)])
    cover_s, video_s = cover_f * frame_s, video_f * frame_s
    grid = np.arange(cover_s[0], cover_s[-1] + 1e-9, step_s)
    video_grid = np.maximum.accumulate(np.interp(grid, cover_s, video_s))
    return grid, video_grid


def low_confidence(alignment: Alignment, threshold: float = LOW_CONFIDENCE) -> str | None:
    """The reject reason of a pair that does not align (`alignment:low_confidence` in rejects)."""
    return "low_confidence" if alignment.confidence < threshold else None
