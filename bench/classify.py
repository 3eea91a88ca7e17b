"""Batch classification throughput of `speechcmd classify --json`: clips per second.

On N generated 1 s clips (tones, chirps and noise at 16 kHz, 16-bit) and, where present, on the
real Speech Commands clips in ../shared/data. Measured end to end in a subprocess (start-up and
model loading included, as a user sees it) and in-process (`Classifier.classify_files` alone), and
per CPU-second beyond start-up: one thread, (N - 1) clips over the CPU time of the run on N clips
less that of the same command on one clip (start-up, imports and model loading), so a busy
machine changes it little.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.common import CLIP_FOLDERS_12, REAL_DATA, bench_checkpoint, is_mfcc, run_child, speechcmd_command

TARGET_CLIPS_PER_SECOND = 500.0  # generated clips, end to end
TARGET_CLIPS_PER_CPU_SECOND_MFCC = 1500.0  # an MFCC model: generated clips per CPU-second beyond start-up, one thread (issue 33)
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}  # idle OpenMP threads sleep instead of spinning


def generate_clips(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` different one-second clips: a random tone or chirp over low noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(16_000) / 16_000
    paths = []
    for n in range(count):
        f0, f1 = rng.uniform(100, 3000, size=2)
        clip = 0.3 * np.sin(2 * np.pi * (f0 + (f1 - f0) * t / 2) * t) + rng.normal(0, 0.01, t.size)
        path = folder / f"clip{n:05d}.wav"
        sf.write(str(path), clip.astype(np.float32), 16_000, subtype="PCM_16")
        paths.append(path)
    return paths


def _in_process(checkpoint: Path, paths: list[Path], repeats: int, threads: int) -> dict:
    import torch

    from speechcmd.model.checkpoint import load_model
    from speechcmd.model.inference import Classifier

    torch.set_num_threads(threads)
    classifier = Classifier(load_model(checkpoint), device="cpu")
    list(classifier.classify_files(paths[:256]))  # warm-up (and the page cache)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        results = list(classifier.classify_files(paths))
        seconds.append(time.perf_counter() - start)
    assert all("label" in r for r in results), "every generated clip must classify"
    best = float(np.median(seconds))
    return {"clips": len(paths), "median_seconds": round(best, 3), "clips_per_second": round(len(paths) / best, 1)}


def _subprocess(checkpoint: Path, inputs: list[Path], clips: int, repeats: int, env: dict[str, str]) -> dict:
    command = speechcmd_command("classify", "--json", "--device", "cpu", "--model", str(checkpoint), *map(str, inputs))
    env = {**os.environ, **env}
    walls, peaks = [], []
    for _ in range(repeats):
        wall, peak, done = run_child(command, env=env)
        lines = done.stdout.decode().splitlines()
        if done.returncode != 0 or len(lines) != clips:
            raise RuntimeError(f"classify failed ({done.returncode}, {len(lines)} lines): {done.stderr.decode()[-500:]}")
        assert all("label" in json.loads(line) for line in lines)
        walls.append(wall)
        peaks.append(peak)
    wall = float(np.median(walls))
    return {"clips": clips, "median_seconds": round(wall, 3), "clips_per_second": round(clips / wall, 1),
            "peak_rss_mb": max(peaks)}


def _cpu_beyond_start_up(checkpoint: Path, folder: Path, paths: list[Path], repeats: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cpu = {}
    for name, inputs in (("all", [folder]), ("one", paths[:1])):
        command = speechcmd_command("classify", "--json", "--device", "cpu", "--model", str(checkpoint), *map(str, inputs))
        runs = []
        for _ in range(repeats):
            _, _, done = run_child(command, env=env)
            if done.returncode != 0:
                raise RuntimeError(f"classify failed ({done.returncode}): {done.stderr.decode()[-500:]}")
            runs.append(done.cpu_seconds)
        cpu[name] = float(np.median(runs))
    return {"clips": len(paths), "cpu_seconds": round(cpu["all"], 3), "start_up_cpu_seconds": round(cpu["one"], 3),
            "clips_per_cpu_second": round((len(paths) - 1) / (cpu["all"] - cpu["one"]), 1) if cpu["all"] > cpu["one"] else None}


def run(options: dict) -> dict:
    import torch

    count = options.get("clips", 2000)
    default_threads = torch.get_num_threads()
    repeats = options.get("repeats", 3)
    with tempfile.TemporaryDirectory(prefix="speechcmd-bench-") as temporary:
        temporary = Path(temporary)
        checkpoint, described = bench_checkpoint(temporary, options.get("model"))
        folder = temporary / "clips"
        folder.mkdir()
        paths = generate_clips(folder, count)
        inputs = {"generated": ([folder], paths)}
        if (REAL_DATA / "yes").is_dir():
            from speechcmd.model.audio import find_audio_files

            folders = [REAL_DATA / name for name in CLIP_FOLDERS_12 if (REAL_DATA / name).is_dir()]
            inputs["real_speech_commands"] = (folders, find_audio_files(folders))
        results = {}
        for name, (arguments, files) in inputs.items():
            results[name] = {
                "subprocess_end_to_end": _subprocess(checkpoint, arguments, len(files), repeats, {}),
                "subprocess_end_to_end_1_thread": _subprocess(checkpoint, arguments, len(files), repeats, {"OMP_NUM_THREADS": "1"}),
                "subprocess_end_to_end_omp_passive": _subprocess(checkpoint, arguments, len(files), repeats, PASSIVE),
                "in_process": _in_process(checkpoint, files, repeats, default_threads),
                "in_process_1_thread": _in_process(checkpoint, files, repeats, 1),
            }
        results["generated"]["beyond_start_up_1_thread"] = _cpu_beyond_start_up(checkpoint, folder, paths, repeats)
        torch.set_num_threads(default_threads)
    if is_mfcc(described):
        measured = results["generated"]["beyond_start_up_1_thread"]["clips_per_cpu_second"] or 0.0
        target = {"what": "clips per CPU-second beyond start-up, generated clips, one thread", "limit": TARGET_CLIPS_PER_CPU_SECOND_MFCC,
                  "measured": measured, "met": measured >= TARGET_CLIPS_PER_CPU_SECOND_MFCC}
    else:
        measured = results["generated"]["subprocess_end_to_end"]["clips_per_second"]
        target = {"what": "clips per second, generated clips, subprocess end to end", "limit": TARGET_CLIPS_PER_SECOND,
                  "measured": measured, "met": measured > TARGET_CLIPS_PER_SECOND}
    return {
        **described,
        "default_threads": default_threads,
        "results": results,
        "target": target,
    }
