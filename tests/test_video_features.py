"""Color / motion / tempo / shot / text features: known answers on arrays and on decoded lavfi clips."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from annotators.video import (
    COLOR_BINS,
    VIDEO_FEATURES,
    motion_range,
    motion_tempo_bpm,
    per_second,
    rgb_difference,
    rgb_histogram,
    rgb_uv_histogram,
    shot_boundaries,
    text_score,
)
from symmv.features.video import video_features
from video_clips import cut, lyric, moving, needs_ffmpeg, solid, still


def uv_bin(log_ratio: float, bins: int = COLOR_BINS) -> int:
    return int(math.floor((log_ratio + 3.0) / 6.0 * bins))


def test_rgb_uv_histogram_known_answer():
    frame = np.full((48, 48, 3), (200, 100, 50), np.uint8)
    hist = rgb_uv_histogram(frame)
    assert hist.shape == (3, COLOR_BINS, COLOR_BINS) and hist.sum() == pytest.approx(1.0, abs=1e-5)
    # R: u = ln(R/G) = ln 2, v = ln(R/B) = ln 4; G: ln(G/R), ln(G/B); B: ln(B/R), ln(B/G)
    expected = {(0, uv_bin(math.log(2)), uv_bin(math.log(4))), (1, uv_bin(-math.log(2)), uv_bin(math.log(2))),
                (2, uv_bin(-math.log(4)), uv_bin(-math.log(2)))}
    assert expected == {(0, 19, 23), (1, 12, 19), (2, 8, 12)}
    for idx in expected:
        assert hist[idx] == pytest.approx(1 / 3, abs=1e-5)


def test_rgb_uv_histogram_weights_by_intensity_and_is_illumination_invariant():
    grey_dim = np.full((8, 8, 3), 60, np.uint8)
    grey_bright = np.full((8, 8, 3), 180, np.uint8)
    np.testing.assert_allclose(rgb_uv_histogram(grey_dim), rgb_uv_histogram(grey_bright))  # same chroma
    half = np.concatenate([np.full((8, 4, 3), (60, 30, 30), np.uint8), np.full((8, 4, 3), (30, 30, 180), np.uint8)], 1)
    hist = rgb_uv_histogram(half)
    w_red, w_blue = math.sqrt(60**2 + 30**2 + 30**2), math.sqrt(30**2 + 30**2 + 180**2)
    red_mass = hist[0, uv_bin(math.log(2)), uv_bin(math.log(2))] * 3
    assert red_mass == pytest.approx(w_red / (w_red + w_blue), abs=1e-4)
    assert rgb_uv_histogram(np.zeros((8, 8, 3), np.uint8)).sum() == pytest.approx(1.0, abs=1e-3)  # eps keeps black


def test_rgb_difference_and_per_second():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 51, np.uint8)
    assert rgb_difference(a, a) == 0.0 and rgb_difference(a, b) == pytest.approx(0.2)
    times = np.array([0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 2.4])
    values = np.array([1, 1, 1, 1, 4, 6, 3], float)
    np.testing.assert_allclose(per_second(times, values), [1.0, 5.0, 3.0])


def test_tempo_mapping():
    assert motion_tempo_bpm(0.0, 0.0, 0.1) == 90.0
    assert motion_tempo_bpm(0.1, 0.0, 0.1) == 130.0
    assert motion_tempo_bpm(0.05, 0.0, 0.1) == pytest.approx(110.0)
    assert motion_tempo_bpm(1.0, 0.0, 0.1) == 130.0 and motion_tempo_bpm(-1.0, 0.0, 0.1) == 90.0
    with pytest.raises(ValueError):
        motion_tempo_bpm(0.05, 0.1, 0.1)
    lo, hi = motion_range(np.linspace(0, 1, 101).tolist() + [float("nan")], 5, 95)
    assert (lo, hi) == pytest.approx((0.05, 0.95))


def test_shot_boundaries_on_histograms():
    red, blue = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)
    red[..., 0], blue[..., 2] = 255, 255
    frames = [red] * 5 + [blue] * 5 + [red] + [blue] * 5  # cuts at frame 5, 10, 11 (a one-frame flash)
    hists = np.stack([rgb_histogram(f) for f in frames])
    times = np.arange(len(frames)) / 6.0
    np.testing.assert_allclose(shot_boundaries(hists, times), [5 / 6, 10 / 6])  # 11/6 within min gap
    assert len(shot_boundaries(hists, times, min_gap_s=0.0)) == 3


def test_text_score_prefers_strokes():
    rng = np.random.default_rng(0)
    smooth = np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (64, 1, 3))
    strokes = smooth.copy()
    strokes[20:30, 5:60:6] = 255  # vertical 1-px bright bars = glyph stems
    assert text_score(smooth) == 0.0
    assert text_score(strokes) > 0.01
    assert text_score(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) > 0  # noise also has strokes


@needs_ffmpeg
class TestDecodedClips:
    def test_solid_clip_histogram(self, tmp_path):
        feats = video_features(solid(tmp_path / "s.mp4"), None, fps=6.0, size=64)
        assert feats.n_frames == 12 and feats.color.shape == (12, 3 * COLOR_BINS**2)
        hist = feats.color.reshape(12, 3, COLOR_BINS, COLOR_BINS)
        for idx in [(0, 19, 23), (1, 12, 19), (2, 8, 12)]:  # H.264 round trip keeps 200/100/50 within a bin
            np.testing.assert_allclose(hist[(slice(None), *idx)], 1 / 3, atol=0.02)

    def test_static_clip_has_zero_motion(self, tmp_path):
        feats = video_features(still(tmp_path / "still.mp4", seconds=3.0), None, fps=6.0, size=64)
        assert len(feats.motion) == 3
        assert feats.motion_mean < 1e-3 and np.all(feats.motion < 1e-3)
        assert len(feats.shot_boundaries_s) == 0

    def test_moving_clip_has_motion(self, tmp_path):
        feats = video_features(moving(tmp_path / "m.mp4", seconds=3.0), None, fps=6.0, size=64)
        assert feats.motion_mean > 0.01 and np.all(feats.motion > 0.01)

    def test_cut_detected_at_the_right_time(self, tmp_path):
        feats = video_features(cut(tmp_path / "cut.mp4", 2.0, 2.0), None, fps=6.0, size=64)
        assert feats.n_frames == 24
        assert len(feats.shot_boundaries_s) == 1
        assert feats.shot_boundaries_s[0] == pytest.approx(2.0, abs=1 / 6 + 1e-9)
        assert feats.motion.argmax() == 2  # the cut's 0.2 s difference falls in second [2, 3)

    def test_lyric_clip_text_score(self, tmp_path):
        text = video_features(lyric(tmp_path / "l.mp4", seconds=2.0), None, fps=2.0, size=224)
        plain = video_features(still(tmp_path / "s.mp4", seconds=2.0), None, fps=2.0, size=224)
        assert np.median(text.text_score) > 0.005 > np.median(plain.text_score)

    def test_row_matches_schema_with_efficientnet(self, tmp_path):
        from symmv.features.encoders import make_encoder

        encoder = make_encoder("efficientnet-lite0")
        feats = video_features(moving(tmp_path / "m.mp4", seconds=1.0), encoder, fps=3.0, size=224)
        assert feats.semantic.shape == (3, 1280) and feats.semantic_encoder.startswith("efficientnet-lite0 ")
        np.testing.assert_allclose(feats.frame_times_s, [0, 1 / 3, 2 / 3])
        table = pa.Table.from_pylist([feats.to_row("song1", "vid1")], schema=VIDEO_FEATURES)
        row = table.to_pylist()[0]
        assert row["semantic_dim"] == 1280 and len(row["semantic"]) == row["n_frames"] == 3
        assert len(row["color"][0]) == row["color_bins"] ** 2 * 3
        no_semantic = video_features(moving(tmp_path / "m2.mp4", seconds=1.0), None, fps=3.0, size=64)
        row = pa.Table.from_pylist([no_semantic.to_row("s", "v")], schema=VIDEO_FEATURES).to_pylist()[0]
        assert row["semantic"] is None and row["semantic_encoder"] is None and row["semantic_dim"] == 0
