"""Cold start of `speechcmd classify` on one file: subprocess wall time, median of a few runs.

"Cold" means a fresh interpreter (imports, model load, first inference); the OS page cache is
warm after the first run, as it is for a user who runs the command twice.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.common import bench_checkpoint, run_child, speechcmd_command


def run(options: dict) -> dict:
    repeats = options.get("repeats", 5)
    with tempfile.TemporaryDirectory(prefix="speechcmd-bench-") as temporary:
        temporary = Path(temporary)
        checkpoint, described = bench_checkpoint(temporary, options.get("model"))
        clip = temporary / "one.wav"
        sf.write(str(clip), (0.3 * np.sin(np.arange(16_000) * 0.2)).astype(np.float32), 16_000)
        command = speechcmd_command("classify", "--json", "--device", "cpu", "--model", str(checkpoint), str(clip))
        run_child(command)  # the page cache
        walls, peaks = [], []
        for _ in range(repeats):
            wall, peak, done = run_child(command)
            if done.returncode != 0:
                raise RuntimeError(done.stderr.decode()[-500:])
            walls.append(wall)
            peaks.append(peak)
        help_walls = [run_child(speechcmd_command("--help"))[0] for _ in range(repeats)]
    return {
        **described,
        "classify_one_file": {
            "median_seconds": round(float(np.median(walls)), 3),
            "min_seconds": round(float(np.min(walls)), 3),
            "runs": repeats,
            "peak_rss_mb": max(peaks),
        },
        "help_only": {"median_seconds": round(float(np.median(help_walls)), 3), "runs": repeats},
    }
