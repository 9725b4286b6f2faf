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


@pytest.mark.slow  # a real Prefect build (~1.5 min on 2 busy cores)
def test_tables_as_written_are_measured_from_a_real_release_build(tmp_path):
    """A real `build-symmv` over a fake release, then the evaluation of what it wrote: the key as stored and
    the chords table on the build's beats against the release files, beside the reference-grid figures, and
    the build's card reports them with the chords table's beat grid."""
    from flows.build import build_symmv
    from symmv.pipeline.config import BuildConfig

    rel = tmp_path / "release"
    (rel / "midi").mkdir(parents=True)
    (rel / "chord").mkdir()
    progression = [(48, 60, 64, 67), (41, 57, 60, 65), (43, 55, 59, 62), (48, 60, 64, 67)]  # C F G C, 1 s each
    write_song(rel / "midi" / "00001.mid", progression * 6)
    # right labels for the first 16 s, then 8 s labelled with the wrong root (D minor for every chord)
    spans = [f"{i * 440} {(i + 1) * 440} {('CM', 'FM', 'GM', 'CM')[i % 4]}" for i in range(16)]
    (rel / "chord" / "00001.txt").write_text("\n".join(spans + [f"{16 * 440} {24 * 440} Dm"]) + "\n")
    (rel / "SymMV.csv").write_text("index\tyoutube_url\ttonality\tshazam_id\n"
                                   "00001\thttps://youtu.be/abcdefghijk\tC major\t\n")
    root = tmp_path / "built"
    build_symmv(config=BuildConfig(source="symmv-release", source_dir=rel, out=root, card_dir=tmp_path / "cards",
                                   transcriber="midi-file", beat_tracker="notes", progress=False,
                                   cache_dir=tmp_path / "cache", qc_min_duration_s=3.0))
    res = main(["--out", str(tmp_path / "r.json"), "--release", str(rel), "--no-corpus", "--reference-every", "0",
                "--tables", str(root)])["tables_as_written"]
    assert res["n_songs"] == 1 and res["keys_as_stored_vs_release_labels"]["exact"] == 1.0
    built = res["chords_on_build_beats_vs_release_chord_files"]
    # 16 of the 24 labelled seconds are right, whatever the tracked beat period (evenly spaced beats)
    assert built["n_beats"] >= 20 and built["root_and_quality"] == pytest.approx(16 / 24, abs=0.06)
    ref = res["reference_grid_same_songs"]["chords_vs_release_chord_files"]
    assert ref["n_beats"] == 48 and ref["root_and_quality"] == pytest.approx(32 / 48)
    assert json.loads((root / "annotator_accuracy.json").read_text())["tables_as_written"] == json.loads(json.dumps(res))
    card = (root / "README.md").read_text()
    assert "Beat grid of the `chords` table" in card and "tables_as_written / keys_as_stored_vs_release_labels" in card
