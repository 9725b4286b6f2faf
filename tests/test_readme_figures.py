"""The README's figures are the benchmarks' (issue 23.1): the demo's songs and splits and the files a build
writes are bench/results/build.json's (bench/bench_build.py: the real demo build), the generate timings are
bench/results/generate.json's. Re-run the bench, then update the README where these fail."""
from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = " ".join((REPO / "README.md").read_text().split())  # the prose wraps anywhere
RESULTS = REPO / "bench" / "results"


def bench(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def test_the_demo_songs_and_splits_are_the_bench_builds():
    build = bench("build")
    run = build["runs"][-1]
    quoted = re.search(r"So a (\d+)-song demo builds (\d+) songs \((\d+) train, (\d+) val, (\d+) test\) and (\d+) "
                       r"`rejects` rows", README)
    assert quoted, "the README's demo sentence moved: update this test with it"
    assert tuple(map(int, quoted.groups())) == (build["inputs"]["covers"], run["songs"], run["splits"]["train"],
                                                run["splits"]["val"], run["splits"]["test"], run["rejects"])


def test_the_dataset_layout_names_the_files_a_build_writes():
    files = bench("build")["runs"][-1]["part_files"]
    layout = re.findall(r"(\w+/split=\w+/part-<hash>\.parquet)", (REPO / "README.md").read_text())
    assert len(layout) >= 3
    for shown in layout:
        pattern = re.escape(shown).replace(re.escape("<hash>"), "[0-9a-f]{16,64}")
        assert any(re.fullmatch(pattern, f) for f in files), (shown, files[:5])


def test_the_generate_timings_are_the_bench_jsons():
    gen = bench("generate")
    total, features, music = (f"{gen[k]:.1f}" for k in ("median_total_s", "median_features_s", "median_music_s"))
    runs = len(gen["runs"])
    quoted = re.search(r"`symmv generate` on a 3-minute video \(`bench/bench_generate.py`, "
                       r"`bench/results/generate.json`\): ([\d.]+) s end to end, median of (\d+), .*?\(load ([\d.]+); "
                       r"features ([\d.]+) s, music ([\d.]+) s", README)
    assert quoted
    assert quoted.groups() == (total, str(runs), f"{gen['machine']['load_avg_1m_at_start']:.1f}", features, music)
    assert f"A 3-minute video -> music end to end: {total} s median of {runs}" in README
    if not gen["efficientnet_lite0_features_by_fps"]:  # an unmeasured figure is not quoted
        assert "did not measure (`efficientnet_lite0_features_by_fps` is empty" in README


def test_the_beat_tracking_table_is_the_bench_jsons():
    """The "Beats, downbeats and meter" table: shares from beats.json (madmom, joint fitted) and meter_fit.json
    (joint held out), in the order beat F / downbeat F / tempo / meter, corpus then demo."""
    beats, fit = bench("beats"), bench("meter_fit")

    def shares(summary: dict) -> str:
        g = summary["goals"]
        return " / ".join(f"{round(100 * g[k]['share'])}" for k in ("beat_f", "downbeat_f", "tempo_ok", "meter_ok"))

    rows = {"madmom (default)": (beats["trackers"]["madmom"], beats["trackers"]["madmom"]["demo"]),
            "joint, held out": (fit["loo"]["joint@basic-pitch"]["corpus"], fit["loo"]["joint@basic-pitch"]["demo"]),
            "joint, fitted on these pieces": (beats["trackers"]["joint"], beats["trackers"]["joint"]["demo"])}
    for label, (corpus, demo) in rows.items():
        quoted = re.search(re.escape(f"| {label}") + r"[^|]*\| ([\d /]+) % \| ([\d /]+) % \|", README)
        assert quoted, label
        assert quoted.groups() == (shares(corpus), shares(demo)), label
