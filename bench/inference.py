"""Latency of one 1 s window: the model alone (fused LSTM), the gate path (`model.trace`), and the
GUI's full pipeline (`StreamingRecognizer.push` of one hop, with gates, to a detection: 0.1 s, or
80 ms for a model with stream context, whose pipeline embeds only the hop's new audio while the
first two rows embed the whole window).

Single thread and torch's default thread count; median and p95 over `repetitions` runs.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.common import bench_model, is_mfcc, timings_ms

TARGET_PIPELINE_MS = 5.0  # full pipeline with gates, one window, one core, CPU time
TARGET_PIPELINE_MS_MFCC = 1.5  # the same for an MFCC model (issue 33)


def run(options: dict) -> dict:
    from speechcmd.model.streaming import StreamingRecognizer

    repetitions = options.get("repetitions", 300)
    model, described = bench_model(path=options.get("model"))
    default_threads = torch.get_num_threads()
    window = torch.from_numpy(np.random.default_rng(0).uniform(-0.3, 0.3, 16_000).astype(np.float32))[None]
    hop_seconds = 0.1
    results = {}
    for threads in (1, default_threads):
        torch.set_num_threads(threads)
        recognizer = StreamingRecognizer(model, hop_seconds=hop_seconds, with_gates=True)
        # up to one hop before the first window is complete (with stream context, its look-ahead too)
        warm_up = recognizer.window_samples + model.config.features.lookahead_samples - recognizer.hop_samples
        recognizer.push(np.zeros(warm_up, np.float32))
        hop = np.random.default_rng(1).uniform(-0.3, 0.3, recognizer.hop_samples).astype(np.float32)

        def push_one_hop():
            (update,) = recognizer.push(hop)
            return update

        with torch.inference_mode():
            results[f"{threads}_thread"] = {
                "model_fused_forward": timings_ms(lambda: model(window), repetitions),
                "model_gate_path_trace": timings_ms(lambda: model.trace(window), repetitions),
                "mfcc_only": timings_ms(lambda: model.frontend(window), repetitions),
                "pipeline_push_one_hop_with_gates": timings_ms(push_one_hop, repetitions),
            }
    torch.set_num_threads(default_threads)
    pipeline = results["1_thread"]["pipeline_push_one_hop_with_gates"]["cpu_median_ms"]
    limit = TARGET_PIPELINE_MS_MFCC if is_mfcc(described) else TARGET_PIPELINE_MS
    return {
        **described,
        "window_seconds": 1.0,
        "hop_seconds": recognizer.hop_samples / recognizer.sample_rate,
        "default_threads": default_threads,
        "timings": results,
        "target": {
            "what": "full pipeline with gates, one window, one thread, median CPU time",
            "limit_ms": limit,
            "measured_ms": pipeline,
            "met": pipeline <= limit,
        },
    }
