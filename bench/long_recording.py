"""Memory and time for the window's file path on a long recording: open it (`FileSource.from_path`),
play its first minute as the recognition worker reads it, and read it whole once more as the
timeline's scan does (the model left out: this measures the file path, not inference). Each run is
a fresh interpreter, so its peak resident memory (`ru_maxrss`) is its own. `--before REV` runs
`app/file_source.py` as it was at a git revision too, in the same way, for a before/after table.

    python -m bench.long_recording --hours 10 [--before 6978698]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import importlib.util, json, resource, sys, time
import numpy as np
module_path, audio = sys.argv[1], sys.argv[2]
if module_path == "-":
    from speechcmd.app import file_source
else:
    spec = importlib.util.spec_from_file_location("file_source_before", module_path)
    file_source = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(file_source)
start = time.perf_counter()
source = file_source.FileSource.from_path(audio, paced=False, block_samples=16_000)
opened = time.perf_counter() - start
for _ in range(60):
    source.read()
if hasattr(source, "blocks"):
    blocks = source.blocks()
else:  # before: the scan sliced the decoded samples
    blocks = (source.samples[i : i + 16_000] for i in range(0, len(source.samples), 16_000))
samples = sum(len(block) for block in blocks)
print(json.dumps({"open_s": round(opened, 2), "total_s": round(time.perf_counter() - start, 2),
                  "seconds": samples / 16_000, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""


def write_recording(path: Path, hours: float) -> None:
    import numpy as np
    import soundfile as sf

    minute = np.zeros(16_000 * 60, np.float32)
    minute[: 16_000] = 0.1 * np.sin(np.arange(16_000) * 0.2)  # a sound a minute: not all silence
    with sf.SoundFile(str(path), "w", 16_000, 1, subtype="PCM_16") as file:
        for _ in range(int(hours * 60)):
            file.write(minute)


def run(module_path: str, audio: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, module_path, str(audio)], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        return {"failed": (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1][:200]}
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=10.0)
    parser.add_argument("--before", help="a git revision whose app/file_source.py to measure too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        audio = Path(folder) / "long.flac"
        write_recording(audio, args.hours)
        rows = {"after (working tree)": run("-", audio)}
        if args.before:
            old = Path(folder) / "file_source_before.py"
            old.write_text(subprocess.run(["git", "show", f"{args.before}:app/file_source.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout)
            rows[f"before ({args.before})"] = run(str(old), audio)
    print(f"a {args.hours:g}-hour FLAC: open, play a minute, read whole again")
    for name, row in rows.items():
        print(f"  {name}: {json.dumps(row)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
