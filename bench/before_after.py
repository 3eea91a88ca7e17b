"""The MFCC path before and after a change, in one process: the gate path (`LSTMLayer.trace`), the
MFCC front-end (`MFCC.raw`) and the streaming window's per-window code (`StreamingRecognizer._score`
and `_traced`) of an earlier commit are swapped in and out of the running code, and the two are
timed interleaved, round after round, so both meet the same machine (on a busy 2-core machine,
runs minutes apart differ by more than the change). CPU time of this thread, one thread, medians.

    python -m bench.before_after --before 279f0f3~1 --model runs/mfcc/best.pt [--rounds 40] [--json OUT]

Also checks that the two give the same logits, features and gates (largest absolute difference).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
SWAPPED = {"network": ("LSTMLayer", ("trace",)), "features": ("MFCC", ("raw",)), "streaming": ("StreamingRecognizer", ("_score", "_traced"))}


def old_module(revision: str, name: str, folder: Path):
    """model/<name>.py as it was at `revision`, imported under another name."""
    source = subprocess.run(["git", "show", f"{revision}:model/{name}.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    path = folder / f"{name}_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"{name}_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the git revision to compare the working tree with")
    parser.add_argument("--model", required=True, help="an MFCC model file")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--json", type=Path, help="also write the result here (bench/results/before_after@MODEL.json)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from speechcmd.model import features, network, streaming
    from speechcmd.model.checkpoint import load_model

    current = {"network": network, "features": features, "streaming": streaming}
    swaps = []  # (class, attribute, before, after)
    with tempfile.TemporaryDirectory() as folder:
        for name, (cls, attributes) in SWAPPED.items():
            old = old_module(args.before, name, Path(folder))
            for attribute in attributes:
                target = getattr(current[name], cls)
                swaps.append((target, attribute, getattr(getattr(old, cls), attribute), getattr(target, attribute)))

    def use(which: int) -> None:
        for target, attribute, *versions in swaps:
            setattr(target, attribute, versions[which])

    model = load_model(args.model).eval()
    rng = np.random.default_rng(0)
    window = torch.from_numpy(rng.uniform(-0.3, 0.3, 16_000).astype(np.float32))[None]
    batch = torch.from_numpy(rng.uniform(-0.3, 0.3, (128, 16_000)).astype(np.float32))
    recognizer = streaming.StreamingRecognizer(model, hop_seconds=0.1, with_gates=True)
    recognizer.push(np.zeros(recognizer.window_samples - recognizer.hop_samples, np.float32))
    hop = rng.uniform(-0.3, 0.3, recognizer.hop_samples).astype(np.float32)
    tests = {  # name -> (function, windows per call, calls per round)
        "MFCC front-end, one window": (lambda: model.frontend(window), 1, 20),
        "`model.trace`, one window, every gate": (lambda: model.trace(window), 1, 20),
        "`StreamingRecognizer.push` of one hop, gates": (lambda: recognizer.push(hop), 1, 20),
        "`model` forward, batch of 128, per window": (lambda: model(batch), 128, 2),
    }
    samples = {(name, which): [] for name in tests for which in (0, 1)}
    with torch.inference_mode():
        for _ in range(args.rounds):
            for which in (0, 1):
                use(which)
                for name, (function, windows, calls) in tests.items():
                    function()
                    for _ in range(calls):
                        start = time.thread_time()
                        function()
                        samples[(name, which)].append((time.thread_time() - start) / windows * 1e3)
        use(0)
        before = model.trace(window)
        use(1)
        after = model.trace(window)
    difference = max([(before.logits - after.logits).abs().max().item(), (before.mfcc - after.mfcc).abs().max().item()]
                     + [(b[k] - a[k]).abs().max().item() for b, a in zip(before.layers, after.layers) for k in b])
    result = {"before": args.before, "model": Path(args.model).name, "rounds": args.rounds, "largest_difference": difference,
              "cpu_ms_median": {name: {"before": round(float(np.median(samples[(name, 0)])), 3),
                                       "after": round(float(np.median(samples[(name, 1)])), 3)} for name in tests}}
    for name, r in result["cpu_ms_median"].items():
        print(f"{name}: {r['before']:.3f} -> {r['after']:.3f} ms CPU ({r['after'] / r['before'] - 1:+.0%})")
    print(f"largest difference over logits, features and every gate: {difference:.1e}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
