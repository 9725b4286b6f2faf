import shutil
import subprocess

import numpy as np
import pretty_midi
import pytest
import torch

from models import tokens as tk
from models.networks.checkpoint import save_model
from models.config import ControllerConfig, ModelConfig
from models.generation.generate import bars_for, generate_music, render_and_mux, tempo_from_motion, write_midi
from models.generation.sample import Grammar, SamplingConfig, condition_context, sample_logits, sample_sequence, video_context
from models.networks.transformers import build_model
from symmv.core.records import Note

torch.set_num_threads(1)
SEM, COL = 9, 4


def small(stage, **kw):
    return ModelConfig(stage=stage, d_model=32, n_head=2, n_layer=2, n_enc_layer=1,
                       controller=ControllerConfig(semantic_dim=SEM, color_dim=COL), **kw)


def check_well_formed(seq: np.ndarray, n_bars: int, stage: str, pitch_range=(21, 108)):
    """Independent re-statement of the grammar the sampler must respect."""
    types = seq[:, 0]
    assert types[0] == tk.BOS and types[-1] == tk.EOS and (types[1:-1] >= tk.RHYTHM).all()
    bar, pos, prev = -1, -1, tk.BOS
    for t in seq[1:-1]:
        if t[0] == tk.RHYTHM and t[1] == tk.BAR:
            bar, pos = bar + 1, -1
            assert t[tk.F["bar"]] == bar
        elif t[0] == tk.RHYTHM:
            assert t[1] - 2 > pos, "positions rise within a bar"
            pos = t[1] - 2
        else:
            assert pos >= 0 and prev != tk.BOS and t[tk.F["bar"]] == bar and t[tk.F["beat"]] == pos + 1
        if t[0] == tk.NOTE:
            assert stage != "chord"
            assert pitch_range[0] <= t[tk.F["pitch"]] - 1 <= pitch_range[1] and 1 <= t[tk.F["duration"]] <= 64
        if t[0] == tk.CHORD:
            no_root = t[tk.F["root"]] == tk.NO_ROOT
            assert 1 <= t[tk.F["root"]] <= tk.NO_ROOT
            assert (tk.QUALITIES[t[tk.F["quality"]] - 1] in tk.NO_CHORD_QUALITIES) == no_root
        prev = t[0]
    assert bar == n_bars - 1, "exactly n_bars bars"


def test_nucleus_sampling_respects_mask_and_top_p():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([3.0, 2.0, 1.0, 0.0])
    allowed = np.array([True, True, True, False])
    assert sample_logits(logits, allowed, 0.0, 0.9, g) == 0  # temperature 0: argmax
    assert {sample_logits(logits, allowed, 1.0, 1e-6, g) for _ in range(20)} == {0}  # tiny nucleus: top-1
    draws = {sample_logits(logits, allowed, 5.0, 1.0, g) for _ in range(200)}
    assert draws == {0, 1, 2}  # never the masked class
    assert {sample_logits(logits, np.array([False, False, True, False]), 1.0, 0.9, g) for _ in range(10)} == {2}


def test_untrained_chord_model_generates_well_formed_sequences():
    torch.manual_seed(0)
    model = build_model(small("chord"))
    ctx = video_context(model, np.random.rand(30, SEM), np.random.rand(20, COL), n_bars=6)
    # the bar of every memory frame (semantic's 30 then colour's 20), laid evenly over the 6 bars
    expected = np.concatenate([np.arange(30) * 6 // 30, np.arange(20) * 6 // 20])
    assert ctx.bars is not None and ctx.bars[0].tolist() == expected.tolist()
    for seed in range(3):  # the KV-cached sampler applies the bar mask step by step
        seq = sample_sequence(model, ctx, Grammar("chord", 6, 100.0), SamplingConfig(temperature=1.5), seed)
        check_well_formed(seq, 6, "chord")


def test_note_stage_copies_the_chords_and_stops_at_the_last_bar():
    torch.manual_seed(1)
    model = build_model(small("melody"))
    chords = [tk.ChordEvent(0, 0, 0, "M"), tk.ChordEvent(0, 8, 7, "7"), tk.ChordEvent(2, 4, -1, "N"),
              tk.ChordEvent(4, 15, 9, "m")]
    cond = tk.encode(chords=chords, n_bars=5, tempo_bpm=120, bos_eos=False)
    ctx = condition_context(model, cond)
    cfg = SamplingConfig(temperature={"type": 1.0, "pitch": 2.0}, top_p={"pitch": 1.0}, pitch_range=(60, 72))
    for seed in range(3):
        seq = sample_sequence(model, ctx, Grammar("melody", 5, 120.0, chords, pitch_range=(60, 72)), cfg, seed)
        check_well_formed(seq, 5, "melody", pitch_range=(60, 72))
        assert tk.decode_chords(seq) == chords
        onsets = [(n.bar, n.position) for n in tk.decode_notes(seq)]
        assert onsets and len(onsets) == len(set(onsets))  # monophonic melody
    # same seed, same music
    a = sample_sequence(model, ctx, Grammar("melody", 5, 120.0, chords), cfg, 7)
    b = sample_sequence(model, ctx, Grammar("melody", 5, 120.0, chords), cfg, 7)
    assert np.array_equal(a, b)


def test_max_tokens_forces_an_end():
    model = build_model(small("accompaniment"))
    cond = tk.encode(chords=[tk.ChordEvent(0, 0, 0, "M")], n_bars=50, bos_eos=False)
    seq = sample_sequence(model, condition_context(model, cond), Grammar("accompaniment", 50, 90.0, max_tokens=20),
                          SamplingConfig(), 0)
    assert len(seq) == 21 and seq[-1][0] == tk.EOS


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    for stage in ("chord", "melody", "accompaniment"):
        save_model(build_model(small(stage)), root / stage)
    return root


def test_generate_music_covers_the_video(ckpt_dir):
    rng = np.random.default_rng(0)
    features = dict(semantic=rng.normal(size=(40, SEM)), color=rng.random((40, COL)), fps=2.0,
                    video_tempo_bpm=120.0, duration_s=19.0)
    n_bars = bars_for(19.0, 120.0)
    assert n_bars == 10  # 19 s at 2 s per bar
    notes = generate_music(features, ckpt_dir, seed=3, temperature=1.0, top_p=0.95)
    assert notes and {n.track for n in notes} <= {"melody", "accompaniment"} and any(n.track == "melody" for n in notes)
    assert all(0 <= n.onset_s < 19.0 and n.offset_s <= 19.0 and n.bar < n_bars for n in notes)
    assert all(np.isclose(n.onset_s, (n.bar * 16 + n.position) * 0.125) for n in notes)
    assert notes == generate_music(features, ckpt_dir, seed=3, temperature=1.0, top_p=0.95)


def test_tempo_from_motion_maps_onto_90_130():
    assert tempo_from_motion(2.0, 2.0, 10.0) == 90.0 and tempo_from_motion(10.0, 2.0, 10.0) == 130.0
    assert tempo_from_motion(6.0, 2.0, 10.0) == 110.0 and tempo_from_motion(50.0, 2.0, 10.0) == 130.0
    assert tempo_from_motion(5.0, 3.0, 3.0) == 110.0  # videos that all move alike: the range's middle


def test_write_midi_round_trip(tmp_path):
    notes = [Note(0.0, 0.5, 60, 90, "melody"), Note(0.5, 1.0, 64, 90, "melody"), Note(0.0, 2.0, 48, 70, "accompaniment")]
    pm = pretty_midi.PrettyMIDI(str(write_midi(notes, tmp_path / "x.mid", tempo_bpm=100)))
    got = {inst.name: [(round(n.start, 2), round(n.end, 2), n.pitch) for n in inst.notes] for inst in pm.instruments}
    assert got == {"accompaniment": [(0.0, 2.0, 48)], "melody": [(0.0, 0.5, 60), (0.5, 1.0, 64)]}


@pytest.mark.skipif(not all(shutil.which(t) for t in ("ffmpeg", "ffprobe", "fluidsynth")),
                    reason="needs ffmpeg, ffprobe and fluidsynth")
def test_render_and_mux_gives_a_video_with_music(tmp_path):
    video = tmp_path / "in.mp4"
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=duration=2:size=128x96:rate=10",
                    "-pix_fmt", "yuv420p", str(video)], check=True)
    midi = write_midi([Note(0.0, 1.0, 60, 100, "melody"), Note(0.5, 1.5, 67, 100, "melody")], tmp_path / "m.mid")
    out = render_and_mux(midi, video, tmp_path / "out.mp4")
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name:format=duration",
                            "-of", "json", str(out)], check=True, capture_output=True, text=True).stdout
    import json

    info = json.loads(probe)
    assert {s["codec_type"]: s["codec_name"] for s in info["streams"]} == {"video": "h264", "audio": "aac"}
    assert abs(float(info["format"]["duration"]) - 2.0) < 0.2


def test_rhythm_is_drawn_from_the_whole_distribution_unless_asked_otherwise():
    from models.generation.sample import per_attribute

    cfg = SamplingConfig()
    assert per_attribute(cfg.top_p, "barbeat", 0.9, override=cfg.top_p_override) == 1.0
    assert per_attribute(cfg.top_p, "duration", 0.9, override=cfg.top_p_override) == 1.0
    assert per_attribute(cfg.top_p, "pitch", 0.9, override=cfg.top_p_override) == 1.0  # since issue 20
    assert per_attribute(cfg.top_p, "root", 0.9, override=cfg.top_p_override) == 0.9
    # a "<stage>.<attr>" key wins over the attribute's for that stage only
    scale = {"pitch": 0.8, "accompaniment.pitch": 1.1}
    assert per_attribute(1.0, "pitch", 1.0, scale, stage="accompaniment") == 1.1
    assert per_attribute(1.0, "pitch", 1.0, scale, stage="melody") == 0.8
    # a per-attribute dict is taken as written
    assert per_attribute({"barbeat": 0.5}, "barbeat", 0.9, override=cfg.top_p_override) == 0.5
