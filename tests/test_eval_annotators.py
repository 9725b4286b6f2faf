"""The accuracy command on a tiny fake release built on the fly (real MIDI, CSV and chord files on disk)."""
import json

import miditoolkit
import pytest

from symmv.evaluation.annotators import main, mirex_key_score, parse_chord_label, quality_of, release_chord_reference


def test_mirex_weights():
    assert mirex_key_score((0, "major"), (0, "major")) == 1.0
    assert mirex_key_score((7, "major"), (0, "major")) == 0.5 and mirex_key_score((5, "minor"), (0, "minor")) == 0.5
    assert mirex_key_score((9, "minor"), (0, "major")) == 0.3 and mirex_key_score((0, "major"), (9, "minor")) == 0.3
    assert mirex_key_score((0, "minor"), (0, "major")) == 0.2
    assert mirex_key_score((1, "major"), (0, "major")) == 0.0


def test_chord_label_parsing():
    assert parse_chord_label("C#m7") == (1, "m7") and parse_chord_label("BbM") == (10, "M")
    assert parse_chord_label("Asus4") == (9, "sus4") and parse_chord_label("Go7") == (7, "o7")
    with pytest.raises(ValueError):
        parse_chord_label("Cmaj9")
    assert quality_of(7, [7, 11, 2, 5]) == "7" and quality_of(0, [0, 3, 6, 10]) == "o" and quality_of(0, [0, 1]) is None


def write_song(path, progression):
    midi = miditoolkit.MidiFile(ticks_per_beat=220)
    inst = miditoolkit.Instrument(program=0)
    for i, pitches in enumerate(progression):  # one chord per 2 beats (440 ticks = 1 s)
        inst.notes += [miditoolkit.Note(velocity=80, pitch=p, start=i * 440, end=(i + 1) * 440) for p in pitches]
    midi.instruments.append(inst)
    midi.dump(str(path))


def test_eval_command_on_fake_release(tmp_path):
    rel = tmp_path / "release"
    (rel / "midi").mkdir(parents=True)
    (rel / "chord").mkdir()
    c_major = [(48, 60, 64, 67), (45, 60, 64, 69), (41, 60, 65, 69), (43, 59, 62, 67)] * 4 + [(43, 59, 62, 65), (48, 60, 64, 67)] * 2
    write_song(rel / "midi" / "00001.mid", c_major)
    # reference: CM, Am, then an unlabelled stretch, then a wrong root for the last chord
    (rel / "chord" / "00001.txt").write_text("0 440 CM\n440 880 Am\n1320 1760 AM\n")
    (rel / "SymMV.csv").write_text("index\tyoutube_url\ttonality\tshazam_id\n00001\tu\tC major\t\n")
    assert release_chord_reference(rel / "chord" / "00001.txt", 8)[:8] == [
        (0, "M"), (0, "M"), (9, "m"), (9, "m"), None, None, (9, "M"), (9, "M")]
    out = tmp_path / "results.json"
    main(["--out", str(out), "--release", str(rel), "--no-corpus", "--reference-every", "1"])
    res = json.loads(out.read_text())["symmv_release"]
    assert res["key_vs_release_labels"]["exact"] == 1.0
    assert res["key_agreement_with_music21_ks"]["exact"] == 1.0
    ch = res["chords_vs_release_chord_files"]
    assert ch["n_beats"] == 6 and ch["root_and_quality"] == pytest.approx(4 / 6) and ch["root"] == pytest.approx(4 / 6)
    assert res["chord_agreement_with_chorder"]["agreement"] == 1.0
