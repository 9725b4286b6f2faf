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
chroma onsets taken from the CQT before HPSS (the harmonic filter's 1.2-s median smears onsets: with it, the
onset cost of bowed strings was lowest 120 ms after the truth), which sharpen the path at note onsets. Cost:
cosine distance on both, summed. Leading and trailing silence of either signal is cut before DTW (a silent
tail cannot be matched and drags the path). DTW: librosa.sequence.dtw with subsequence matching (the cover may
start and end anywhere in the video: intros, outros, a spoken prelude), steps (1,1),(1,2),(2,1), so a tempo
ratio up to 2x either way is reachable, each costing the same per cover frame (no tempo direction is
favoured), plus STEP_PENALTY per non-diagonal step: without it, long held chords (equal chroma for seconds)
let the path drift at no cost (two demo lead sheets drifted by 1.7 s).

Confidence: the path's mean chroma cost against a null -- the same DTW run against the video's chroma rotated
by 3, 6 and 9 semitones (same rhythm, same harmony statistics, wrong pitches): 1 - path cost / the lowest null
path cost. Median 0 for a soundtrack of another piece (the optimal path through unrelated music is no better
than through a transposed copy; max 0.24 on 6-s clips), median 0.73-0.83 and min 0.31 for aligned pairs
(bench/bench_alignment.py: the demo's pairs and re-rendered ones; the lowest are held-chord lead sheets).
Chroma only: the onset term is close to its null on every pair (rhythm alone does not identify a piece).
Threshold: LOW_CONFIDENCE.

Transposition: piano covers are often played in another key than the recording (an easier key, the singer's
range). A pair below LOW_CONFIDENCE in the soundtrack's key is searched in the other keys: one DTW per shift
of the soundtrack's chroma (all 12, on frames pooled to <= KEY_MAX_CELLS cells), the lowest path chroma cost
wins, and its confidence is 1 - that cost / the lowest cost of the shifts 2..10 semitones away from it.
The best of 12 is a selected maximum, so another piece scores higher than in one key (6-s demo clips: 0.31
vs 0.24; with a null of 3/6/9 around the searched shift it reached 0.58), hence the nulls 2..10 (not
3/6/9) and a stricter threshold for a transposed alignment (LOW_CONFIDENCE + KEY_SEARCH_MARGIN). The shift
is stored (`transposition_semitones`, -5..+6: the cover sounds that many semitones above the soundtrack). A
pair aligned in the soundtrack's key never runs the search: untransposed pairs are aligned as before.
Measured once on bench_alignment's 64 same-piece pairs (demo 6 s, 30 s, 40 s untransposed and transposed;
a one-off script, not kept), against a mean-chroma key profile choosing 1, 2 or 3 candidates for the DTW:
the profile's top 1 / 2 / 3 missed the true shift on 4 / 3 / 1 pairs, the 12 DTWs on none.

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

ANNOTATOR_VERSION = "align-chroma-dlnco-dtw 3"
METHOD = "chroma_cqt+dlnco, key-shift search, subsequence DTW (librosa), confidence vs transposed null"

FEATURE_RATE_HZ = 25.0  # 40-ms frames: path quantization +-20 ms, cost matrix of a 5-min song ~ 7500^2 cells
PATH_STEP_S = 0.5  # the stored path is resampled every 0.5 s of cover time
STEP_PENALTY = 0.1  # added per (1,2)/(2,1) step, on a cost in [0, 2] (demo + bench sweep: 0.05-0.2 all work)
NULL_ROTATIONS = (3, 6, 9)  # semitones: the transposed copies of the video the confidence is measured against
# the confidence's DTWs run on at most this many cells (~ two 56-s signals at 25 Hz): a 3-min pair's four
# full-size DTWs took 18 s of its alignment, pooled 4x in time they cost ~1/16 of that each. Short pairs
# stay at full resolution (pooling 6-s clips 2x let another piece reach 0.28)
NULL_MAX_CELLS = 2_000_000
# key search (pairs below LOW_CONFIDENCE in the soundtrack's key): 12 DTWs on frames pooled to <= this many
# cells (a 30-s pair ~ 2x, 6-s clips at full resolution)
KEY_MAX_CELLS = 400_000
KEY_NULL_SHIFTS = range(2, 11)  # the searched shift's null: every shift but itself and its neighbours +-1
# a transposed alignment must clear LOW_CONFIDENCE + this: another piece searched over 12 keys reached 0.31
# (6-s demo clips), transposed covers of the same piece >= 0.47 (6 s), >= 0.53 (40-s bench pairs)
KEY_SEARCH_MARGIN = 0.13
# below: no alignment. Measured (bench/bench_alignment.py --demo): aligned pairs >= 0.31 (30-s demo pairs),
# >= 0.55 (6-s demo clips, 40-s bench pairs); soundtracks of another piece <= 0.24 (6 s), <= 0.11 (30-40 s)
LOW_CONFIDENCE = 0.27
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
    transposition_semitones: int = 0  # the cover sounds this many semitones above the soundtrack (-5..+6)
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
                "confidence": float(self.confidence), "transposition_semitones": int(self.transposition_semitones),
                "method": self.method}


def _hop(sample_rate: int, rate_hz: float) -> int:
    # librosa's CQT wants the hop to be a multiple of 2**(n_octaves - 1); 7 octaves -> 64
    return max(64, int(round(sample_rate / rate_hz / 64)) * 64)


def sync_features(audio: np.ndarray, sample_rate: int, rate_hz: float = FEATURE_RATE_HZ) -> tuple[np.ndarray, np.ndarray, float]:
    """(chroma (12, T) unit-norm, dlnco (12, T) unit-norm, frame_s) of the harmonic part of the audio."""
    import librosa

    hop = _hop(sample_rate, rate_hz)
    audio = np.asarray(audio, np.float32)
    raw_cqt = np.abs(librosa.cqt(audio, sr=sample_rate, hop_length=hop, fmin=librosa.note_to_hz("A0"),
                                 n_bins=84, bins_per_octave=12))
    # harmonic part (librosa's kernel_size = (harmonic: 31 frames ~ 1.2 s along time, percussive: 9 bins along
    # frequency)): on the bench, drums otherwise pull the path off by seconds (p95 1.5 s -> 0.2 s without pair 9)
    cqt, _ = librosa.decompose.hpss(raw_cqt, kernel_size=(31, 9))
    log_cqt = np.log1p(100.0 * cqt)  # compressed, so loud bass notes do not own the chroma
    chroma = np.zeros((12, log_cqt.shape[1]))
    for b in range(log_cqt.shape[0]):
        chroma[(b + 9) % 12] += log_cqt[b]  # bin 0 is A
    chroma = _unit(chroma)
    # DLNCO-like: half-wave-rectified chroma increase (of the CQT before HPSS), locally normalized, decayed ~0.2 s
    onset = np.maximum(0.0, np.diff(np.concatenate([np.zeros((84, 1)), np.log1p(100.0 * raw_cqt)], axis=1), axis=1))
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
          rate_hz: float = FEATURE_RATE_HZ, key_invariant: bool = True) -> Alignment:
    """Align the cover (query) into the video soundtrack (reference). Both mono float, same sample rate.
    key_invariant=False assumes the cover is in the soundtrack's key (the aligner before version 3)."""
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
    path = warping_path(chroma_c, onset_c, chroma_v, onset_v)
    confidence, shift = alignment_confidence(chroma_c, onset_c, chroma_v, onset_v, path), 0
    if key_invariant and confidence < LOW_CONFIDENCE:  # maybe a cover in another key: search the 12
        searched, key_confidence = search_transposition(chroma_c, onset_c, chroma_v, onset_v)
        if searched != 0 and key_confidence - KEY_SEARCH_MARGIN > confidence:
            chroma_v, onset_v = np.roll(chroma_v, searched, axis=0), np.roll(onset_v, searched, axis=0)
            path, confidence, shift = warping_path(chroma_c, onset_c, chroma_v, onset_v), key_confidence, searched
    cover_t, video_t = _resample_path(path + np.array([c0, v0]), frame_s)
    return Alignment(song_id=song_id, cover_time_s=cover_t, video_time_s=video_t, confidence=confidence,
                     transposition_semitones=shift)


def signed_shift(semitones: int) -> int:
    """A rotation of the 12 pitch classes as -5..+6 semitones."""
    return (int(semitones) + 5) % 12 - 5


def search_transposition(chroma_c, onset_c, chroma_v, onset_v) -> tuple[int, float]:
    """(the cover's key shift against the soundtrack, -5..+6; its confidence): the shift whose optimal DTW
    path has the lowest chroma cost, on frames pooled to <= KEY_MAX_CELLS cells, and 1 - that cost / the
    lowest cost of the shifts KEY_NULL_SHIFTS away from it (the other keys are its null)."""
    pool = int(np.ceil(np.sqrt(chroma_c.shape[1] * chroma_v.shape[1] / KEY_MAX_CELLS)))
    if pool > 1:
        chroma_c, onset_c, chroma_v, onset_v = (_pooled(x, pool) for x in (chroma_c, onset_c, chroma_v, onset_v))
    cost = np.array([_transposed_path_cost(chroma_c, onset_c, chroma_v, onset_v, k) for k in range(12)])
    best = int(np.argmin(cost))
    null_cost = min(cost[(best + k) % 12] for k in KEY_NULL_SHIFTS)
    return signed_shift(best), float(np.clip(1.0 - cost[best] / max(null_cost, 1e-9), 0.0, 1.0))


def alignment_confidence(chroma_c, onset_c, chroma_v, onset_v, path) -> float:
    """1 - the path's chroma cost / the lowest null (transposed video) path cost, in [0, 1]. A long pair is
    measured on frames pooled to <= NULL_MAX_CELLS cells (its path recomputed there), so the three null DTWs
    stay cheap; short pairs, where every frame of evidence counts, keep full resolution."""
    pool = int(np.ceil(np.sqrt(chroma_c.shape[1] * chroma_v.shape[1] / NULL_MAX_CELLS)))
    if pool > 1:
        chroma_c, onset_c, chroma_v, onset_v = (_pooled(x, pool) for x in (chroma_c, onset_c, chroma_v, onset_v))
        path = warping_path(chroma_c, onset_c, chroma_v, onset_v)
    null_cost = min(_transposed_path_cost(chroma_c, onset_c, chroma_v, onset_v, k) for k in NULL_ROTATIONS)
    return float(np.clip(1.0 - path_chroma_cost(chroma_c, chroma_v, path) / max(null_cost, 1e-9), 0.0, 1.0))


def _pooled(features: np.ndarray, k: int) -> np.ndarray:
    """Means of k consecutive frames, unit-normalized again."""
    n = features.shape[1] // k * k
    return _unit(features[:, :n].reshape(features.shape[0], -1, k).mean(axis=2))


def _transposed_path_cost(chroma_c, onset_c, chroma_v, onset_v, semitones: int) -> float:
    """The null: the optimal path's chroma cost against the video transposed by `semitones`."""
    chroma_t, onset_t = np.roll(chroma_v, semitones, axis=0), np.roll(onset_v, semitones, axis=0)
    return path_chroma_cost(chroma_c, chroma_t, warping_path(chroma_c, onset_c, chroma_t, onset_t))


def warping_path(chroma_cover: np.ndarray, onset_cover: np.ndarray, chroma_video: np.ndarray,
                 onset_video: np.ndarray) -> np.ndarray:
    """(L, 2) increasing (cover frame, video frame): subsequence DTW on chroma + onset cosine distances."""
    import librosa

    cost = 2.0 - chroma_cover.T @ chroma_video  # (Tc, Tv): cosine distances of chroma and of onsets, summed
    cost -= onset_cover.T @ onset_video
    # per cover frame, (1,1), (2,1) and (1,2) cost the same (weights 1, 2 for 2 frames, 1), plus the step penalty
    _, path = librosa.sequence.dtw(C=cost, subseq=True, step_sizes_sigma=np.array([[1, 1], [1, 2], [2, 1]]),
                                   weights_add=np.array([0.0, STEP_PENALTY, STEP_PENALTY]),
                                   weights_mul=np.array([1.0, 1.0, 2.0]))
    # librosa 0.11 quirk: with subseq=True and a cost matrix taller than wide it returns the path as (column,
    # row) (it flips the path for an X/Y transpose it only does when given X and Y, not C). Undone here: a
    # cover sounding longer than the video's soundtrack (a faster official video) was read transposed, which
    # is what refused the demo's faster soundtracks (strings or not) at confidence 0.15-0.3.
    if cost.shape[0] > cost.shape[1]:
        path = path[:, ::-1]
    return path[::-1]


def path_chroma_cost(chroma_cover: np.ndarray, chroma_video: np.ndarray, path: np.ndarray) -> float:
    """Mean chroma cosine distance along the path, one cell per cover frame (slow passages weigh the same)."""
    _, first = np.unique(path[:, 0], return_index=True)
    a, b = path[first, 0], path[first, 1]
    return float(np.mean(1.0 - np.einsum("ct,ct->t", chroma_cover[:, a], chroma_video[:, b])))


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
    """The reject reason of a pair that does not align (`alignment:low_confidence` in rejects); a transposed
    alignment, the best of 12 keys, must clear threshold + KEY_SEARCH_MARGIN."""
    margin = KEY_SEARCH_MARGIN if alignment.transposition_semitones else 0.0
    return "low_confidence" if alignment.confidence < threshold + margin else None
