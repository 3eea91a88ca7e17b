"""CPU cost of live recognition: process time per second of audio at the GUI's hop (0.1 s; 80 ms for a
model with stream context), with gates.

Audio is pushed in 0.1 s blocks as fast as the model scores them; the process CPU time spent
divided by the seconds of audio pushed is the share of one core that live recognition needs.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from bench.common import bench_model, is_mfcc

TARGET_SHARE = 0.05  # of one core
TARGET_SHARE_MFCC = 0.015  # of one core, for an MFCC model (issue 33)


def _cpu_per_audio_second(model, seconds: float, with_gates: bool) -> dict:
    from speechcmd.model.streaming import StreamingRecognizer

    recognizer = StreamingRecognizer(model, hop_seconds=0.1, with_gates=with_gates)
    audio = np.random.default_rng(0).uniform(-0.3, 0.3, int(seconds * recognizer.sample_rate)).astype(np.float32)
    blocks = np.array_split(audio, round(seconds / 0.1))
    recognizer.push(np.zeros(recognizer.window_samples, np.float32))  # warm-up: the first window
    cpu, wall, updates = time.process_time(), time.perf_counter(), 0
    for block in blocks:
        updates += len(recognizer.push(block))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "audio_seconds": seconds,
        "hop_seconds": recognizer.hop_samples / recognizer.sample_rate,  # 0.08 with stream context
        "windows_scored": updates,
        "cpu_seconds": round(cpu, 3),
        "wall_seconds": round(wall, 3),
        "core_share": round(cpu / seconds, 4),
        "cpu_ms_per_window": round(cpu / max(updates, 1) * 1e3, 3),
    }


def run(options: dict) -> dict:
    model, described = bench_model(path=options.get("model"))
    default_threads = torch.get_num_threads()
    results = {}
    # Spinning OpenMP threads on a busy machine can cost 20x more: a shorter stretch of audio then.
    for threads, seconds in ((1, options.get("audio_seconds", 60.0)), (default_threads, options.get("audio_seconds_default_threads", 10.0))):
        torch.set_num_threads(threads)
        results[f"{threads}_thread"] = {
            "with_gates": _cpu_per_audio_second(model, seconds, with_gates=True),
            "without_gates": _cpu_per_audio_second(model, seconds, with_gates=False),
        }
    torch.set_num_threads(default_threads)
    share = results["1_thread"]["with_gates"]["core_share"]
    limit = TARGET_SHARE_MFCC if is_mfcc(described) else TARGET_SHARE
    return {
        **described,
        "hop_seconds": results["1_thread"]["with_gates"]["hop_seconds"],
        "default_threads": default_threads,
        "results": results,
        "target": {"what": "CPU share of one core, live audio, gates, one thread", "limit": limit,
                   "measured": share, "met": share <= limit},
    }
