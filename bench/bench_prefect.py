"""Prefect's cost per song, and what a second Dask worker buys, on a fixed synthetic per-song workload.

    python bench/bench_prefect.py [--songs 20 200] [--song-s 0.2] [--repeats 3] [--out bench/results/prefect.json]

(default 20 songs: ~4 min on the loaded 2-core box; 200 songs add ~6 min.)

Per-song work: numpy FFTs over a seeded 4096-sample signal, calibrated to ~--song-s seconds of one core
(pocketfft is single-threaded, so one song is one core's work and nothing else runs in parallel).
Measured, each as the median of --repeats runs over N songs:
  plain        a Python loop calling the work function
  prefect      the same calls as mapped Prefect tasks in a flow, ThreadPoolTaskRunner(max_workers=1):
               sequential like `plain`, so (prefect - plain) is Prefect's own overhead; its share of wall time
               and the cost per task are reported. The flow's API (an ephemeral server, started once by a
               warm-up flow, whose time is reported on its own) is running for the timed runs.
  dask-1/2     the mapped tasks on a running LocalCluster of 1 or 2 single-threaded worker processes
               (make_task_runner("dask", address=...), workers warmed up by one flow run): the scale-out
               case, where the cluster outlives the flow. speed-up = wall(dask-1) / wall(dask-2).
  dask-w-cold  once per song count: make_task_runner("dask", w), i.e. a fresh LocalCluster per flow run,
               whose start and worker imports (prefect, numpy) are part of the wall time.
"map_s" is the mapped part alone (first submit to last result, timed inside the flow).
The load average is recorded: the 2 cores of this machine are shared, so a second worker gets a second
core only when nobody else is using it.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIGNAL_LEN = 4096


def song_work(seed: int, n_iter: int) -> float:
    """One synthetic song: n_iter FFT round-trips over a seeded signal; returns a checksum."""
    x = np.random.default_rng(seed).standard_normal(SIGNAL_LEN)
    for _ in range(n_iter):
        x = np.fft.irfft(np.fft.rfft(x) * 0.999, n=SIGNAL_LEN)
    return float(np.abs(x).sum())


def calibrate(song_s: float) -> tuple[int, float]:
    """n_iter so that one song takes ~song_s on one core (best of 5: other users only ever add time)."""
    n = 200
    best = min(_timed(song_work, 0, n)[1] for _ in range(5))
    n_iter = max(1, round(n * song_s / best))
    return n_iter, min(_timed(song_work, 0, n_iter)[1] for _ in range(3))


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def build_flow():
    from prefect import flow, task, unmapped
    from prefect.cache_policies import NO_CACHE

    @task(name="song", cache_policy=NO_CACHE)
    def song_task(seed: int, n_iter: int) -> float:
        return song_work(seed, n_iter)

    @flow(name="bench-prefect")
    def songs_flow(n_songs: int, n_iter: int) -> dict:
        t = time.perf_counter()
        futures = song_task.map(list(range(n_songs)), n_iter=unmapped(n_iter))
        checksum = sum(f.result() for f in futures)
        return {"map_s": time.perf_counter() - t, "checksum": checksum}

    return songs_flow


def run_plain(n_songs: int, n_iter: int) -> dict:
    checksum, wall = _timed(lambda: sum(song_work(i, n_iter) for i in range(n_songs)))
    return {"wall_s": wall, "checksum": checksum}


def run_flow(songs_flow, runner, n_songs: int, n_iter: int) -> dict:
    result, wall = _timed(songs_flow.with_options(task_runner=runner), n_songs, n_iter)
    return {"wall_s": wall, **result}


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def bench_songs(songs_flow, clusters: dict, n_songs: int, n_iter: int, repeats: int) -> dict:
    from symmv.pipeline.runners import make_task_runner

    runs: dict[str, list[dict]] = {"plain": [], "prefect": [], "dask-1": [], "dask-2": []}
    for _ in range(repeats):  # interleaved, so a burst of load from other users hits every variant alike
        runs["plain"].append(run_plain(n_songs, n_iter))
        runs["prefect"].append(run_flow(songs_flow, make_task_runner("threads", 1), n_songs, n_iter))
        for w, cluster in clusters.items():
            runner = make_task_runner("dask", address=cluster.scheduler_address)
            runs[f"dask-{w}"].append(run_flow(songs_flow, runner, n_songs, n_iter))
        print(f"  {n_songs} songs: " + ", ".join(f"{k} {v[-1]['wall_s']:.1f}s" for k, v in runs.items()), flush=True)
    for w in clusters:  # once: a fresh LocalCluster per flow run, as make_task_runner("dask", w) gives
        runs[f"dask-{w}-cold"] = [run_flow(songs_flow, make_task_runner("dask", w), n_songs, n_iter)]
    print(f"  {n_songs} songs, cold clusters: " + ", ".join(
        f"{k} {v[-1]['wall_s']:.1f}s" for k, v in runs.items() if k.endswith("cold")), flush=True)
    checksums = {k: round(v[0]["checksum"], 6) for k, v in runs.items()}
    assert len(set(checksums.values())) == 1, f"variants disagree: {checksums}"
    plain, prefect = median_of(runs["plain"], "wall_s"), median_of(runs["prefect"], "wall_s")
    return {
        "n_songs": n_songs,
        "median_wall_s": {k: median_of(v, "wall_s") for k, v in runs.items()},
        "median_map_s": {k: median_of(v, "map_s") for k, v in runs.items() if k != "plain"},
        "prefect_overhead_share_of_wall": (prefect - plain) / prefect,
        "prefect_overhead_per_task_ms": 1000 * (prefect - plain) / n_songs,
        "dask_speedup_2_vs_1_warm": median_of(runs["dask-1"], "wall_s") / median_of(runs["dask-2"], "wall_s"),
        "dask_speedup_2_vs_1_cold": runs["dask-1-cold"][0]["wall_s"] / runs["dask-2-cold"][0]["wall_s"],
        "runs": runs,
    }


def start_clusters(songs_flow) -> dict:
    """A running LocalCluster of 1 and of 2 single-threaded workers, warmed up by one tiny flow run each."""
    from distributed import LocalCluster

    from symmv.pipeline.runners import make_task_runner

    clusters = {}
    for w in (1, 2):
        clusters[w] = LocalCluster(n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None)
        run_flow(songs_flow, make_task_runner("dask", address=clusters[w].scheduler_address), 2 * w, 1)
    return clusters


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--songs", type=int, nargs="+", default=[20])  # bench/results/prefect.json: --songs 20 200
    p.add_argument("--song-s", type=float, default=0.2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--repeats-large", type=int, default=1, help="repeats for song counts above 50")
    p.add_argument("--out", type=Path, default=Path("bench/results/prefect.json"))
    a = p.parse_args()

    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # also read by the spawned workers
    from symmv.pipeline.config import prefect_defaults

    prefect_defaults(PREFECT_LOGGING_LEVEL="WARNING")
    n_iter, song_s = calibrate(a.song_s)
    print(f"per-song work: {n_iter} FFT round-trips = {song_s:.3f} s on one core", flush=True)
    songs_flow = build_flow()
    load_before = os.getloadavg()
    _, first_flow_s = _timed(run_flow, songs_flow, None, 1, 1)  # starts the ephemeral API
    clusters, setup_s = _timed(start_clusters, songs_flow)
    try:
        results = [bench_songs(songs_flow, clusters, n, n_iter, a.repeats if n <= 50 else a.repeats_large)
                   for n in a.songs]
    finally:
        for cluster in clusters.values():
            cluster.close()

    report = {
        "benchmark": "Prefect overhead per song and Dask 1 -> 2 workers on a synthetic fixed-cost song",
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpu_count": os.cpu_count(), "loadavg_1_5_15_before": load_before,
                    "loadavg_1_5_15_after": os.getloadavg()},
        "versions": {d: importlib.metadata.version(d) for d in ("prefect", "prefect-dask", "distributed", "numpy")},
        "input": {"song_work": f"{n_iter} numpy FFT round-trips of {SIGNAL_LEN} samples", "song_s_one_core": song_s,
                  "repeats": a.repeats, "repeats_large": a.repeats_large,
                  "prefect_api": "ephemeral (as `symmv build`), started before timing"},
        "first_flow_s_incl_ephemeral_api_start": first_flow_s,
        "warm_cluster_setup_s": setup_s,
        "results": results,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2))
    for r in results:
        print(f"{r['n_songs']} songs: prefect overhead {100 * r['prefect_overhead_share_of_wall']:.1f}% of wall "
              f"({r['prefect_overhead_per_task_ms']:.0f} ms/task); dask 2 vs 1 worker x{r['dask_speedup_2_vs_1_warm']:.2f} "
              f"(running cluster), x{r['dask_speedup_2_vs_1_cold']:.2f} (fresh cluster per run)")
    print(f"-> {a.out}")


if __name__ == "__main__":  # Dask's LocalCluster spawns processes that re-import this file
    main()
