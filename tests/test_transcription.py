"""Transcription backends on a rendered clip of known notes, and bad audio rejected with a reason."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import mido
import numpy as np
import pytest

from symmv.evaluation.transcription import midi_notes, note_scores, render_midi
from symmv.transcription.backends import (
    BACKENDS,
    Transcription,
    TranscriptionError,
    default_backend,
    transcribe,
)
from symmv.io.audio import decode_audio, stream_windows

pytestmark = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or shutil.which("ffmpeg") is None, reason="needs fluidsynth and ffmpeg"
)

# (start in eighth notes, pitch): a C-major arpeggio up and down, then a C-major triad
MELODY = [(0, 60), (1, 64), (2, 67), (3, 72), (4, 71), (5, 67), (6, 65), (7, 62), (8, 60), (8, 64), (8, 67)]


def write_midi(path: Path, events=MELODY, eighth_ticks=240, length_ticks=220, bpm=120.0) -> Path:
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
    messages = []
    for start, pitch in events:
        messages.append((start * eighth_ticks, 1, mido.Message("note_on", note=pitch, velocity=90)))
        messages.append((start * eighth_ticks + length_ticks, 0, mido.Message("note_off", note=pitch)))
    now = 0
    for tick, _, msg in sorted(messages, key=lambda m: (m[0], m[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    mid.save(path)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, Path]:
    """(rendered wav, its MIDI): ~5 s of piano at 22050 Hz."""
    d = tmp_path_factory.mktemp("clip")
    midi = write_midi(d / "clip.mid")
    return render_midi(midi, d / "clip.wav"), midi


def encode(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(dst)], check=True)
    return dst


def test_registry_names_backends():
    assert {"basic-pitch", "transkun", "pti"} <= set(BACKENDS)
    assert default_backend() in BACKENDS


def test_default_backend_is_transkun_on_two_cores(monkeypatch):
    import os

    monkeypatch.delenv("SYMMV_TRANSCRIBER", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert default_backend() == ("transkun" if importlib.util.find_spec("transkun") else "basic-pitch")
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert default_backend() == "basic-pitch"
    monkeypatch.setenv("SYMMV_TRANSCRIBER", "pti")
    assert default_backend() == "pti"


def test_basic_pitch_transcribes_rendered_clip(clip):
    wav, midi = clip
    result = transcribe(wav, backend="basic-pitch")
    assert isinstance(result, Transcription)
    assert result.backend == "basic-pitch" and result.version.startswith("0.4.0")
    assert all(n.track == "piano" and 1 <= n.velocity <= 127 for n in result.notes)
    assert [n.onset_s for n in result.notes] == sorted(n.onset_s for n in result.notes)
    scores = note_scores(midi_notes(midi), result.notes)
    # Basic Pitch adds octave ghosts on this soundfont (measured F1 0.65, precision ~0.5) but finds every onset.
    assert scores["onset_recall"] >= 0.9
    assert scores["onset_f1"] >= 0.6


def test_basic_pitch_matches_reference_inference(clip):
    """Our ffmpeg stream + batched windows reproduce basic_pitch.inference.run_inference."""
    from basic_pitch import ICASSP_2022_MODEL_PATH
    from basic_pitch.inference import run_inference

    from symmv.transcription.backends import get_backend

    wav, _ = clip
    ours = get_backend("basic-pitch").activations(wav)
    theirs = run_inference(wav, ICASSP_2022_MODEL_PATH)
    for key in ("note", "onset", "contour"):
        assert ours[key].shape == theirs[key].shape
        np.testing.assert_allclose(ours[key], theirs[key], atol=1e-4)


@pytest.mark.parametrize("suffix,args", [("m4a", ["-c:a", "aac"]), ("webm", ["-c:a", "libopus"])])
def test_compressed_containers_decode_like_wav(clip, tmp_path, suffix, args):
    wav, midi = clip
    encoded = encode(wav, tmp_path / f"clip.{suffix}", *args)
    audio = decode_audio(encoded, 22050)
    reference = decode_audio(wav, 22050)
    assert abs(len(audio) - len(reference)) < 0.1 * 22050  # codec priming/padding only
    scores = note_scores(midi_notes(midi), transcribe(encoded).notes)
    assert scores["onset_recall"] >= 0.9


def test_stream_windows_cover_the_signal_like_basic_pitch(clip):
    wav, _ = clip
    audio = decode_audio(wav, 22050)
    window, hop, pad = 4000, 3000, 500
    padded = np.concatenate([np.zeros(pad, np.float32), audio])
    stats: dict = {}
    windows = list(stream_windows(wav, 22050, window, hop, pad_left=pad, stats=stats))
    assert [s for s, _ in windows] == list(range(0, len(padded), hop))
    for start, samples in windows:
        expected = padded[start:start + window]
        np.testing.assert_array_equal(samples[: len(expected)], expected)
        assert np.all(samples[len(expected):] == 0)
    assert stats["n_samples"] == len(audio)


# -- bad audio -> TranscriptionError with a reason the flow writes into `rejects` -------------------


def test_silence_is_rejected(tmp_path):
    silent = tmp_path / "silent.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono",
                    "-t", "3", str(silent)], check=True)
    with pytest.raises(TranscriptionError) as err:
        transcribe(silent)
    assert err.value.reason == "silent_audio"


def test_truncated_downloads_are_rejected(clip, tmp_path):
    wav, _ = clip
    m4a = encode(wav, tmp_path / "clip.m4a", "-c:a", "aac")
    webm = encode(wav, tmp_path / "clip.webm", "-c:a", "libopus")
    cut_m4a = tmp_path / "cut.m4a"  # moov atom lost: nothing decodes
    cut_m4a.write_bytes(m4a.read_bytes()[: m4a.stat().st_size // 2])
    cut_webm = tmp_path / "cut.webm"  # decodes cleanly up to the cut; the header still says 5 s
    cut_webm.write_bytes(webm.read_bytes()[: webm.stat().st_size // 2])
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(wav.read_bytes()[:44])
    reasons = {}
    for path in (cut_m4a, cut_webm, header_only):
        with pytest.raises(TranscriptionError) as err:
            transcribe(path)
        reasons[path.name] = err.value.reason
    assert reasons == {"cut.m4a": "undecodable", "cut.webm": "truncated_audio", "header.wav": "empty_audio"}


def test_wrong_format_and_missing_file_are_rejected(tmp_path):
    text = tmp_path / "notes.m4a"
    text.write_text("this is not audio\n")
    for path in (text, tmp_path / "missing.wav"):
        with pytest.raises(TranscriptionError) as err:
            transcribe(path)
        assert err.value.reason == "undecodable"
        assert isinstance(err.value, ValueError)


def test_unknown_backend_is_a_key_error(clip):
    with pytest.raises(KeyError):
        transcribe(clip[0], backend="no-such-backend")


# -- HTK mel filterbank (Transkun's torchaudio dependency) -----------------------------------------


def test_mel_filterbank_equals_librosa_htk():
    import librosa

    from symmv.transcription.mel import melscale_fbanks

    ours = melscale_fbanks(n_freqs=2049, f_min=30, f_max=8000, n_mels=229, sample_rate=44100).numpy()
    reference = librosa.filters.mel(sr=44100, n_fft=4096, n_mels=229, fmin=30, fmax=8000, htk=True, norm=None)
    assert ours.shape == (2049, 229)
    # float32 (torchaudio's arithmetic) against librosa's float64: the narrowest low filters differ ~1e-5
    np.testing.assert_allclose(ours, reference.T, atol=5e-5)


def test_torchaudio_shim_is_scoped():
    import sys

    from symmv.transcription.mel import melscale_fbanks, torchaudio_shim

    before = sys.modules.get("torchaudio")
    with torchaudio_shim():
        import torchaudio

        assert torchaudio.functional.melscale_fbanks is melscale_fbanks
    assert sys.modules.get("torchaudio") is before


# -- Transkun --------------------------------------------------------------------------------------


def test_transkun_filterbank_equals_its_checkpoint():
    """The shim builds exactly the buffer Transkun trained with (stored in its checkpoint)."""
    pytest.importorskip("transkun")
    import torch

    from symmv.transcription.mel import melscale_fbanks
    from symmv.transcription.transkun import _pretrained_dir

    state = torch.load(_pretrained_dir() / "2.0.pt", map_location="cpu", weights_only=True)["state_dict"]
    stored = state["framewiseFeatureExtractor.freq2mels"]
    np.testing.assert_allclose(melscale_fbanks(2049, 30, 8000, 229, 44100).numpy(), stored.numpy(), atol=1e-7)


@pytest.mark.slow
@pytest.mark.heavy
def test_transkun_transcribes_rendered_clip(clip):
    pytest.importorskip("transkun")
    wav, midi = clip
    result = transcribe(wav, backend="transkun")
    assert result.backend == "transkun"
    from symmv.transcription.transkun import native_bf16

    bf16 = "+bf16" if native_bf16() else ""  # the default's precision follows the CPU
    assert result.version == f"2.0.1-v2+seg16-hop14+batch4+sdpa4d{bf16}+skiptail"
    assert note_scores(midi_notes(midi), result.notes)["onset_f1"] >= 0.95


@pytest.mark.slow
@pytest.mark.heavy
def test_transkun_streaming_equals_its_own_transcribe(clip):
    """Our segment streaming reproduces TransKun.transcribe on the whole (mono) signal."""
    pytest.importorskip("transkun")
    import torch

    from symmv.transcription.backends import get_backend

    wav, _ = clip
    backend = get_backend("transkun", batch_segments=0)  # the per-segment path: transkun's own maths
    ours = backend.transcribe(wav)
    with torch.inference_mode():
        theirs = backend.model.transcribe(torch.from_numpy(decode_audio(wav, 44100))[:, None],
                                          stepInSecond=backend.segment_hop_s,
                                          segmentSizeInSecond=backend.segment_size_s)
    theirs = sorted((round(e.start, 6), e.pitch) for e in theirs if e.pitch >= 0)
    assert [(n.onset_s, n.pitch) for n in ours] == [(pytest.approx(t, abs=1e-5), p) for t, p in theirs]


def test_transkun_viterbi_port_backtracks_like_transkun():
    """Our NumPy recursion over (begin, track, end) scores + backtracking = transkun's viterbiBackward,
    ties included (integer scores make many), from arbitrary forced start frames."""
    pytest.importorskip("transkun")
    import sys

    import torch

    import transkun.CRF  # noqa: F401  (the package re-exports a class under the module's name)
    from symmv.transcription.transkun import _backtrack, _viterbi_pointers

    viterbi_backward = sys.modules["transkun.CRF.NeuralSemiCRFInterval"].viterbiBackward
    generator = torch.Generator().manual_seed(0)
    T, n = 40, 12
    score = torch.randint(-4, 4, (T, T, n), generator=generator).float()  # (end, begin, track)
    starts = torch.randint(0, T // 2, (n,), generator=generator).tolist()
    theirs = viterbi_backward(score, torch.zeros(T - 1, n), forcedStartPos=starts)
    ptr, singleton = _viterbi_pointers(score.permute(1, 2, 0).contiguous().numpy())
    ours = _backtrack(ptr, singleton, starts)
    assert sum(len(path) for path in ours) > n  # intervals were found, not only empty paths
    assert ours == [list(path) for path in theirs]


def test_transkun_windows_batched_and_pure_padding_skipped(tmp_path):
    """Windows come in batches; with skip_tail a window that starts after the audio ended is dropped."""
    import soundfile as sf

    from symmv.transcription.transkun import _batches_of_windows

    fs, segment, step, pad = 1000, 4000, 3000, 1000
    wav = tmp_path / "tone.wav"
    sf.write(wav, 0.5 * np.sin(np.arange(7800) * 0.3), fs)  # 7.8 s: the audio ends at 8800 of 9800 padded
    full = list(_batches_of_windows(wav, fs, segment, step, pad, 2, skip_tail=False))
    assert [[b for b, _ in batch] for batch in full] == [[0, 3000], [6000, 9000]]
    assert not full[-1][-1][1].any()  # the window at 9000 holds only zero padding
    skipped = list(_batches_of_windows(wav, fs, segment, step, pad, 2, skip_tail=True))
    assert [[b for b, _ in batch] for batch in skipped] == [[0, 3000], [6000]]
    np.testing.assert_array_equal(skipped[-1][0][1], full[-1][0][1])


@pytest.fixture(scope="module")
def transkun_reference(clip):
    """Per-segment transkun on the clip with short segments (4 s every 3 s: three segments)."""
    pytest.importorskip("transkun")
    from symmv.transcription.transkun import Transkun

    wav, _ = clip
    return Transkun(segment_size_s=4.0, segment_hop_s=3.0, batch_segments=0).transcribe(wav)


def test_transkun_batched_path_gives_the_per_segment_notes(clip, transkun_reference):
    """Segments batched two per forward, Viterbi recursion batched, scores in our layout: the same notes
    (start frames carried across batches, notes merged across segment boundaries) as transcribeFrames."""
    from symmv.transcription.transkun import Transkun

    wav, _ = clip
    batched = Transkun(segment_size_s=4.0, segment_hop_s=3.0, batch_segments=2, flash_attention=False,
                       bf16=False, skip_tail=False)
    assert batched.version.endswith("+seg4-hop3+batch2")
    notes = batched.transcribe(wav)
    assert len(transkun_reference) >= 4
    assert [(n.pitch, n.velocity) for n in notes] == [(n.pitch, n.velocity) for n in transkun_reference]
    np.testing.assert_allclose([(n.onset_s, n.offset_s) for n in notes],
                               [(n.onset_s, n.offset_s) for n in transkun_reference], atol=1e-4)


def test_transkun_fast_options_keep_the_onsets(clip, transkun_reference):
    """Fused attention + bf16 transformer + no all-padding segment: the same onsets (50 ms) on the clip,
    and a version string of its own, so cached notes of the exact path are not reused. (4 s segments miss
    notes against the MIDI, in both paths alike; the full-size comparison is bench/bench_transcription.py.)"""
    from symmv.transcription.transkun import Transkun

    wav, _ = clip
    fast = Transkun(segment_size_s=4.0, segment_hop_s=3.0, batch_segments=2, bf16=True)
    assert fast.version.endswith("+seg4-hop3+batch2+sdpa4d+bf16+skiptail")
    notes = fast.transcribe(wav)
    assert len(notes) >= 4 and note_scores(transkun_reference, notes)["onset_f1"] >= 0.99


@pytest.mark.parametrize("native", [True, False])
def test_transkun_uses_bf16_by_default_only_where_the_cpu_has_it(monkeypatch, native):
    """Emulated bf16 costs ~9.6x float32 on an AVX2-only CPU (bench/results/transcription_bf16.json): the default
    follows native_bf16, and the version tag (hence the cache key) says which precision ran."""
    pytest.importorskip("transkun")
    import torch

    from symmv.transcription import transkun

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert transkun.native_bf16() is native
    model = transkun.Transkun(segment_size_s=4.0, segment_hop_s=3.0, batch_segments=2)
    assert model.bf16 is native and ("+bf16" in model.version) is native


# -- piano_transcription_inference -----------------------------------------------------------------


@pytest.fixture(scope="module")
def pti_random_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised checkpoint of PTI's real Note_pedal architecture, in its file layout."""
    pytest.importorskip("piano_transcription_inference")
    import torch
    from piano_transcription_inference import models

    torch.manual_seed(0)
    model = models.Note_pedal(frames_per_second=100, classes_num=88)
    path = tmp_path_factory.mktemp("pti") / "random.pth"
    torch.save({"model": {"note_model": model.note_model.state_dict(),
                          "pedal_model": model.pedal_model.state_dict()}}, path)
    return path


def test_pti_missing_checkpoint_is_a_clear_error(tmp_path):
    pytest.importorskip("piano_transcription_inference")
    from symmv.transcription.pti import PianoTranscriptionInference

    with pytest.raises(FileNotFoundError, match="cannot be downloaded"):
        PianoTranscriptionInference(checkpoint=tmp_path / "nope.pth")


@pytest.mark.slow
@pytest.mark.heavy
def test_pti_activations_equal_the_package_pipeline(clip, pti_random_checkpoint):
    """Our loader, ffmpeg decode, batching and stitching give the package's own output_dict, and the
    checkpoint file is left untouched (the package's loader would `wget -O` over files < 160 MB)."""
    from piano_transcription_inference import PianoTranscription
    from piano_transcription_inference.pytorch_utils import forward as pti_forward

    from symmv.transcription.pti import PianoTranscriptionInference

    wav, _ = clip
    size_before = pti_random_checkpoint.stat().st_size
    ours = PianoTranscriptionInference(checkpoint=pti_random_checkpoint, segment_s=2.0, batch_size=3)
    activations = ours.activations(wav)
    assert pti_random_checkpoint.stat().st_size == size_before
    package = PianoTranscription(checkpoint_path=str(pti_random_checkpoint), segment_samples=32000,
                                 device="cpu")  # our random file is > 160 MB, so no wget
    # PianoTranscription.transcribe up to its post-processor (which, on random weights, is slow):
    audio = decode_audio(wav, 16000)[None, :]
    padded = np.pad(audio, ((0, 0), (0, -audio.shape[1] % 32000)))
    output = pti_forward(package.model, package.enframe(padded, 32000), batch_size=1)
    theirs = {key: package.deframe(value) for key, value in output.items()}
    for key, value in activations.items():
        np.testing.assert_allclose(value, theirs[key], atol=1e-5)
    # The post-processor walks every frame above threshold in Python: with random weights, near-certain
    # thresholds keep that short. The path yields piano-range Notes or a no_notes reject.
    strict = PianoTranscriptionInference(checkpoint=pti_random_checkpoint, segment_s=2.0, onset_threshold=0.999,
                                         offset_threshold=0.999, frame_threshold=0.999)
    try:
        notes = strict.transcribe(wav)
        assert all(21 <= n.pitch <= 108 for n in notes)
    except TranscriptionError as err:
        assert err.reason == "no_notes"
