"""Benchmark the video features: decode + color + motion realtime factor per CPU core on a 360p clip,
semantic-encoder frames/s on CPU, and the Python-side memory while streaming a 1080p clip.

    .venv/bin/python bench/bench_video.py [--seconds 60] [--repeats 3] [--out bench/results/video.json]

"Per core" = video seconds / CPU seconds (this process + ffmpeg), with ffmpeg and torch on one thread,
so the figure does not depend on how busy the shared machine's other cores are. The input is H.264
testsrc2 at 640x360, 25 fps, CRF 23 (~740 kb/s, in the range of YouTube's 360p H.264).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from symmv.features.video import video_features  # noqa: E402
from bench.common import machine as common_machine  # noqa: E402
from symmv.io.video import iter_frames, iter_streams, probe  # noqa: E402


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def make_clip(path: Path, seconds: float, size: str) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={size}:r=25:d={seconds}",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", str(path)],
                   check=True)
    return path


def timed(fn, repeats: int) -> dict:
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = cpu_seconds(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds() - c0)
    return {"wall_s": walls, "cpu_s": cpus, "median_wall_s": statistics.median(walls),
            "median_cpu_s": statistics.median(cpus)}


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stream_memory(clip: Path, seconds: float) -> dict:
    """Python-side resident memory while streaming every frame of a 1080p clip (ffmpeg is separate)."""
    start, peak, n = rss_kb(), 0, 0
    for n, _ in enumerate(iter_frames(clip, fps=25.0, size=224, threads=1), 1):
        if n % 25 == 0:
            peak = max(peak, rss_kb())
    return {"seconds": seconds, "frames_224px": n, "python_rss_growth_kb": max(peak, rss_kb()) - start,
            "decoded_1080p_kb_if_held": int(seconds * 25 * 1920 * 1080 * 3 / 1024)}


def machine() -> dict:
    import torch

    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {**common_machine(), "numpy": np.__version__, "torch": torch.__version__, "ffmpeg": ffmpeg}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the 360p clip")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--encoder-frames", type=int, default=48)
    ap.add_argument("--stream-1080p-seconds", type=float, default=20.0, help="0 skips the memory check")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "video.json")
    args = ap.parse_args()

    import torch

    from symmv.features.encoders import make_encoder, provenance

    results: dict = {"machine": machine(), "inputs": vars(args) | {"out": str(args.out)}}
    with tempfile.TemporaryDirectory() as tmp:
        if args.stream_1080p_seconds > 0:  # first, before the encoder's weights are in memory
            results["stream_1080p"] = stream_memory(make_clip(Path(tmp) / "1080p.mp4", args.stream_1080p_seconds,
                                                              "1920x1080"), args.stream_1080p_seconds)
        clip = make_clip(Path(tmp) / "360p.mp4", args.seconds, "640x360")
        info = probe(clip)
        results["inputs"]["clip"] = {"source": "lavfi testsrc2", "codec": info.codec, "width": info.width,
                                     "height": info.height, "fps": info.fps, "duration_s": info.duration_s,
                                     "bitrate_kbps": round(clip.stat().st_size * 8 / info.duration_s / 1000)}

        decode = timed(lambda: sum(1 for _ in iter_streams(clip, [(6.0, 224), (5.0, 64)], threads=1)), args.repeats)
        feats = timed(lambda: video_features(clip, None, fps=6.0, size=224, threads=1), args.repeats)
        for entry in (decode, feats):
            entry["realtime_per_core"] = info.duration_s / entry["median_cpu_s"]
            entry["realtime_wall"] = info.duration_s / entry["median_wall_s"]
        results["decode_only_6fps224_5fps64"] = decode
        results["decode_color_motion_shots_text"] = feats
        results["goal_realtime_per_core"] = 50.0

        frames = np.stack([f for _, f in iter_frames(clip, fps=6.0, size=224)][: args.encoder_frames])
        encoder = make_encoder("efficientnet-lite0")
        results["semantic"] = {"encoder": provenance(encoder), "dim": encoder.dim, "frames": len(frames)}
        for threads in sorted({1, min(2, os.cpu_count() or 1)}):
            torch.set_num_threads(threads)
            encoder.encode(frames[:4])  # warm-up
            t = timed(lambda: encoder.encode(frames), args.repeats)
            results["semantic"][f"threads_{threads}"] = t | {"frames_per_s": len(frames) / t["median_wall_s"],
                                                            "ms_per_frame": 1000 * t["median_wall_s"] / len(frames)}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    f, s = results["decode_color_motion_shots_text"], results["semantic"]
    print(f"decode+features: {f['realtime_per_core']:.1f}x realtime per core ({f['realtime_wall']:.1f}x wall); "
          f"decode only {results['decode_only_6fps224_5fps64']['realtime_per_core']:.1f}x per core")
    print("semantic " + ", ".join(f"{k}: {v['frames_per_s']:.1f} frames/s" for k, v in s.items() if k.startswith("threads_")))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
