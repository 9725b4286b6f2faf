"""End-to-end `symmv generate` time on a 3-minute video with the shipped checkpoints, on this machine's CPU.
Writes bench/results/generate.json (machine, inputs, per-run and median wall time of video features,
music sampling and render + mux).

    .venv/bin/python bench/bench_generate.py [--video data/demo-source/videos/X.mp4] [--seconds 180]

The 3-minute input is a demo video looped with ffmpeg (`-stream_loop`, re-encoded), so the decoder and the
encoder see real footage. Target (issue 14): < 60 s on 2 cores.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_result  # noqa: E402
from models.generation.generate import GENERATE_FPS, SHIPPED_CHECKPOINTS, generate_for_video  # noqa: E402


def looped(video: Path, seconds: float, out: Path) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(video), "-t", str(seconds),
                    "-an", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--video", help="default: the first official demo video")
    p.add_argument("--seconds", type=float, default=180.0)
    p.add_argument("--ckpt", default=str(SHIPPED_CHECKPOINTS))
    p.add_argument("--fps", type=float, default=GENERATE_FPS)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--dataset", default="data/symmv-demo")
    p.add_argument("--encoder-fps", type=float, nargs="*", default=[2.0, 6.0],
                   help="also time the video-conditioned features (efficientnet-lite0) at these fps")
    args = p.parse_args(argv)
    demo = sorted(Path("data/demo-source/videos").glob("*.mp4"))
    video = Path(args.video) if args.video else demo[0] if demo else None
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        if video is None:  # no demo built: ffmpeg's moving test pattern stands in (the music side is what we time)
            video = Path("ffmpeg lavfi testsrc2")
            long_video = Path(tmp) / "long.mp4"
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
                            "-t", str(args.seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                            str(long_video)], check=True)
        else:
            long_video = looped(video, args.seconds, Path(tmp) / "long.mp4")
        for i in range(args.repeats):
            t0 = time.perf_counter()
            r = generate_for_video(long_video, Path(tmp) / f"out{i}.mp4", args.ckpt, seed=i, fps=args.fps,
                                   dataset_root=args.dataset)
            total = time.perf_counter() - t0
            runs.append({"total_s": round(total, 2), "features_s": r["features_s"], "music_s": r["music_s"],
                         "render_mux_s": round(total - r["features_s"] - r["music_s"], 2), "notes": r["notes"],
                         "tempo_bpm": r["tempo_bpm"], "semantic_encoder": r["semantic_encoder"],
                         "soundfont": r.get("soundfont")})
        encoder_runs = {}
        if args.encoder_fps:  # what a video-conditioned chord stage (CHORD_VIDEO=1) adds: semantic features
            from symmv.features.encoders import make_encoder
            from symmv.features.video import video_features

            encoder = make_encoder("efficientnet-lite0")
            for fps in args.encoder_fps:
                t0 = time.perf_counter()
                feats = video_features(long_video, encoder, fps=fps)
                encoder_runs[str(fps)] = {"features_s": round(time.perf_counter() - t0, 2),
                                          "frames": int(len(feats.semantic))}
    write_result("generate", {
        "inputs": {"video": str(video), "seconds": args.seconds, "ckpt": args.ckpt, "features_fps": args.fps,
                   "repeats": args.repeats},
        "runs": runs,
        "median_total_s": statistics.median(r["total_s"] for r in runs),
        "median_features_s": statistics.median(r["features_s"] for r in runs),
        "median_music_s": statistics.median(r["music_s"] for r in runs),
        "efficientnet_lite0_features_by_fps": encoder_runs,
        "target_total_s": 60.0,
        "gpu": "none available in this session",
    })


if __name__ == "__main__":
    main()
