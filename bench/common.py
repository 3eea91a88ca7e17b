"""What every benchmark shares: the model under test, timing statistics, and the machine's state.

Each benchmark is a function `run(options) -> dict` in its own module; `bench.run_all` calls it in a
fresh interpreter so that the peak resident memory (ru_maxrss) it reports belongs to it alone.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = Path(os.environ.get("SPEECHCMD_DATA", ROOT.parent / "shared" / "data" / "speech_commands_12"))
LABELS_12 = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
CLIP_FOLDERS_12 = LABELS_12  # the real data's clip folders (not `_background_noise_`, which holds long recordings)


def bench_model(hidden_size: int = 128, num_layers: int = 2, path: str | None = None):
    """The model at `path` (`python -m bench --model`), else the bundled model when it exists, else
    a fresh one of the same shape (timing ignores weights).

    Returns (model, description) where description says which one, for the results file.
    """
    import torch

    from speechcmd.model.checkpoint import bundled_model_path, load_model
    from speechcmd.model.network import ModelConfig, SpeechCommandsModel

    if path is not None:
        model = load_model(path)
        return model, {"model": Path(path).name, "model_config": model.config.to_dict()}
    if bundled_model_path().is_file() and (hidden_size, num_layers) == (128, 2):
        model = load_model(bundled_model_path())
        return model, {"model": bundled_model_path().name, "model_config": model.config.to_dict()}
    torch.manual_seed(0)
    config = ModelConfig(hidden_size=hidden_size, num_layers=num_layers)
    model = SpeechCommandsModel(config, LABELS_12).eval()
    return model, {"model": "fresh (untrained, bundled model absent)", "model_config": config.to_dict()}


def bench_checkpoint(directory: Path, path: str | None = None) -> tuple[Path, dict]:
    """A model file for the CLI benchmarks: `path`, the bundled one, or the fresh model saved to `directory`."""
    from speechcmd.model.checkpoint import bundled_model_path, save_checkpoint

    if path is not None:
        return Path(path), bench_model(path=path)[1]
    if bundled_model_path().is_file():
        return bundled_model_path(), bench_model()[1]
    model, description = bench_model()
    return save_checkpoint(Path(directory) / "bench-model.pt", model), description


def timings_ms(function: Callable[[], object], repetitions: int, warmup: int = 20) -> dict:
    """Median, p95, min and mean wall time of `function` in milliseconds, and the median CPU time of
    this thread (`cpu_median_ms`): on a machine shared with other work, wall time counts the waits
    for a core, CPU time only the work."""
    for _ in range(warmup):
        function()
    samples, cpu = [], []
    for _ in range(repetitions):
        start, start_cpu = time.perf_counter(), time.thread_time()
        function()
        samples.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
    samples_ms = np.array(samples) * 1e3
    return {
        "median_ms": round(float(np.median(samples_ms)), 3),
        "p95_ms": round(float(np.percentile(samples_ms, 95)), 3),
        "min_ms": round(float(samples_ms.min()), 3),
        "mean_ms": round(float(samples_ms.mean()), 3),
        "cpu_median_ms": round(float(np.median(cpu)) * 1e3, 3),
        "repetitions": repetitions,
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_child(command: list[str], **kwargs) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run a command; return (wall seconds, its own peak RSS in MB, the completed process). The
    process's CPU time (user + system, seconds) is its `cpu_seconds`."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    stdout = process.stdout.read()
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    done.cpu_seconds = usage.ru_utime + usage.ru_stime
    return wall, round(usage.ru_maxrss / 1024, 1), done


def speechcmd_command(*arguments: str) -> list[str]:
    """The `speechcmd` console command, run through this interpreter."""
    return [sys.executable, "-m", "speechcmd.app.cli", *arguments]


def machine() -> dict:
    import torch

    load = os.getloadavg()
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(load[0], 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_default_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def is_mfcc(described: dict) -> bool:
    """Whether the model under test reads MFCCs (issue 33 gives it its own, tighter speed targets)."""
    return described["model_config"]["features"].get("kind", "mfcc") == "mfcc"
