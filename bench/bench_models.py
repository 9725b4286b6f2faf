"""Benchmark V-MusProd on CPU: training and generation tokens/s (SDPA vs naive attention) and the time to
score a 3-minute video with the tiny config. Writes bench/results/models.json (machine, inputs, medians).

    .venv/bin/python bench/bench_models.py [--repeats 5] [--threads 2]

"naive" materialises the (T, S) mask and scores in fp32; "sdpa" is torch's scaled_dot_product_attention
with is_causal. Models for the 3-minute run are tiny ones trained for a few epochs on the synthetic
fixture, so that their token density is music-like (an untrained model emits arbitrary numbers of notes).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# the synthetic-but-musical fixture of the model tests (tests/model_fixtures.py): music-like token density
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench.common import machine as common_machine  # noqa: E402
from models.training import data as D  # noqa: E402
from models import tokens as tk  # noqa: E402
from models.config import ControllerConfig, configs_for  # noqa: E402
from models.generation.generate import bars_for, generate_music  # noqa: E402
from models.generation.sample import Grammar, SamplingConfig, condition_context, sample_sequence  # noqa: E402
from models.training.train import train_stage  # noqa: E402
from model_fixtures import synthetic_tables  # noqa: E402
from models.networks.transformers import build_model  # noqa: E402

SEM, COL = 512, 768  # CLIP-like semantic width; an RGB-uv histogram width (16*16*3)


def machine() -> dict:
    return {**common_machine(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def train_tokens_per_s(stage: str, impl: str, tables, window_bars: int, steps: int, block_size: int) -> float:
    model_cfg, train_cfg = configs_for(stage, "tiny")
    model_cfg = replace(model_cfg, attn_impl=impl, block_size=block_size,
                        controller=ControllerConfig(semantic_dim=SEM, color_dim=COL))
    train_cfg = replace(train_cfg, window_bars=window_bars, windows_per_song=4)
    torch.manual_seed(0)
    model = build_model(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    items = D.windows(D.build_examples(tables, "train"), model_cfg, train_cfg, np.random.default_rng(0))
    batch = D.collate(items[: train_cfg.batch_size])
    n_tokens = int((batch["tokens"][:, 1:, 0] != tk.PAD).sum())
    rates = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        loss, _ = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:  # warm-up steps not timed
            rates.append(n_tokens / (time.perf_counter() - t0))
    return statistics.median(rates)


def generation_tokens_per_s(impl: str, n_tokens: int, repeats: int) -> float:
    model_cfg, _ = configs_for("accompaniment", "tiny")
    torch.manual_seed(0)
    model = build_model(replace(model_cfg, attn_impl=impl))
    cond = tk.encode(chords=[tk.ChordEvent(b, 0, 0, "M") for b in range(64)], n_bars=64, bos_eos=False)
    ctx = condition_context(model, cond)
    rates = []
    for r in range(repeats):
        t0 = time.perf_counter()
        seq = sample_sequence(model, ctx, Grammar("accompaniment", 64, 110.0, max_tokens=n_tokens), SamplingConfig(), r)
        rates.append(len(seq) / (time.perf_counter() - t0))
    return statistics.median(rates)


def three_minute_video(repeats: int) -> dict:
    tables = synthetic_tables(n_songs=24, semantic_dim=SEM, color_dim=COL)
    ckpt = Path(tempfile.mkdtemp())
    for stage in ("chord", "melody", "accompaniment"):
        model_cfg, train_cfg = configs_for(stage, "tiny")
        train_stage(stage, ckpt, tables=tables, model_cfg=model_cfg, train_cfg=replace(train_cfg, epochs=4),
                    progress=False)
    rng = np.random.default_rng(0)
    fps, duration_s, tempo = 6.0, 180.0, 110.0
    features = dict(semantic=rng.normal(size=(int(fps * duration_s), SEM)).astype(np.float32),
                    color=rng.random((int(fps * duration_s), COL)).astype(np.float32), fps=fps,
                    video_tempo_bpm=tempo, duration_s=duration_s)
    times, n_notes = [], []
    for seed in range(repeats):
        t0 = time.perf_counter()
        notes = generate_music(features, ckpt, seed=seed)
        times.append(time.perf_counter() - t0)
        n_notes.append(len(notes))
    return {"duration_s": duration_s, "fps": fps, "video_tempo_bpm": tempo, "n_bars": bars_for(duration_s, tempo),
            "semantic_dim": SEM, "color_dim": COL, "train_epochs_per_stage": 4,
            "median_generation_s": statistics.median(times), "times_s": times, "n_notes": n_notes}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "models.json"))
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tables = synthetic_tables(n_songs=12, semantic_dim=SEM, color_dim=COL)
    result = {"machine": machine(), "inputs": {"size": "tiny", "batch_size": 8, "steps": args.steps,
                                               "repeats": args.repeats}}
    training = {}
    for stage, window_bars, block in (("chord", 16, 256), ("melody", 16, 256), ("accompaniment", 32, 1024)):
        rounds = {"naive": [], "sdpa": []}
        for _ in range(args.repeats):  # interleaved, so load changes on a shared box hit both alike
            for impl in rounds:
                rounds[impl].append(train_tokens_per_s(stage, impl, tables, window_bars, args.steps, block))
        rates = {impl: statistics.median(r) for impl, r in rounds.items()}
        training[stage] = {"window_bars": window_bars, "block_size": block, "tokens_per_s": rates,
                           "sdpa_over_naive": rates["sdpa"] / rates["naive"]}
        print(stage, training[stage], flush=True)
    result["training"] = training
    gen = {impl: generation_tokens_per_s(impl, 600, args.repeats) for impl in ("naive", "sdpa")}
    result["generation"] = {"stage": "accompaniment", "tokens": 600, "tokens_per_s": gen,
                            "sdpa_over_naive": gen["sdpa"] / gen["naive"]}
    print(result["generation"], flush=True)
    result["three_minute_video"] = three_minute_video(args.repeats)
    print(result["three_minute_video"], flush=True)
    result["machine"]["load_avg_1m_end"] = os.getloadavg()[0]  # shared box: load skews every figure
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
