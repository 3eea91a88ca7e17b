"""Run every benchmark, each in a fresh interpreter, and write the results.

    python -m bench                       # all of them (about 10 minutes on a busy 2-core machine)
    python -m bench --only inference streaming
    python -m bench --quick               # fewer repetitions, for a smoke test (results not written)
    python -m bench --only training --train-recipe "--data DIR --hidden 128 --layers 2 --batch-size 64"
    python -m bench --only inference streaming --model runs/mfcc/best.pt   # another model than the bundled one

Results: bench/results/<name>.json (one per benchmark; <name>@<model file's stem>.json with --model)
and the table in bench/README.md, which is regenerated from all the JSON files present.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
ROOT = BENCH.parent
BENCHMARKS = ("inference", "streaming", "classify", "cold_start", "training", "gate_path")
# A run is a benchmark in an environment. PASSIVE makes idle OpenMP threads sleep instead of spin:
# on a 2-core machine shared with other work, spinning torch threads stall each other for seconds.
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}
RUNS = {
    "inference": ("inference", {}),
    "inference_omp_passive": ("inference", PASSIVE),
    "streaming": ("streaming", {}),
    "streaming_omp_passive": ("streaming", PASSIVE),
    "classify": ("classify", {}),
    "cold_start": ("cold_start", {}),
    "cold_start_omp_passive": ("cold_start", PASSIVE),
    "training": ("training", {}),
    "training_omp_passive": ("training", PASSIVE),
    "gate_path": ("gate_path", {}),
}

FULL = {
    "inference": {"repetitions": 300},
    "streaming": {"audio_seconds": 60.0, "audio_seconds_default_threads": 10.0},
    "classify": {"clips": 2000, "repeats": 2},
    "cold_start": {"repeats": 5},
    "training": {"steps": 100, "warmup_steps": 3},
    "gate_path": {"repetitions": 200},
}
# Spinning threads make a step ~20x slower: fewer of them where the run keeps torch's default.
RUN_OPTIONS = {"training": {"steps": 30}}
QUICK = {
    "inference": {"repetitions": 20},
    "streaming": {"audio_seconds": 5.0, "audio_seconds_default_threads": 2.0},
    "classify": {"clips": 200, "repeats": 1},
    "cold_start": {"repeats": 1},
    "training": {"steps": 2, "warmup_steps": 1},
    "gate_path": {"repetitions": 20},
}


def run_benchmark(run: str, options: dict) -> dict:
    benchmark, env = RUNS[run]
    command = [sys.executable, "-m", "bench.worker", benchmark, json.dumps(options)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env})
    if done.returncode != 0:
        raise SystemExit(f"benchmark {run} failed:\n{done.stderr[-3000:]}")
    return {"run": run, "env": env, **json.loads(done.stdout.strip().splitlines()[-1])}


# ---- the Markdown table ------------------------------------------------------------------------


def _mark(target: dict | None) -> str:
    if not target:
        return ""
    return "met" if target["met"] else "**missed**"


def _cpu(timing: dict) -> str:
    """The CPU-time median beside a wall-time one, where the result has it (since 2026-12-07)."""
    return f"; CPU {timing['cpu_median_ms']:.2f}" if "cpu_median_ms" in timing else ""


def rows(result: dict) -> list[tuple[str, str, str, str]]:
    """(measure, value, target, met) rows for one run's result, its model (when given with --model)
    and environment named."""
    tags = [f"`{result['model']}`"] if result.get("model_given") else []
    tags += [f"{k}={v}" for k, v in result.get("env", {}).items()]
    return [(f"{measure} [{' '.join(tags)}]" if tags else measure, *rest) for measure, *rest in _rows(result)]


def result_files(run: str) -> list[Path]:
    """The results of a run: the default model's, then those of models given with --model."""
    default = RESULTS / f"{run}.json"
    return ([default] if default.is_file() else []) + sorted(RESULTS.glob(f"{run}@*.json"))


def _rows(result: dict) -> list[tuple[str, str, str, str]]:
    name = result["benchmark"]
    out = []
    if name == "inference":
        threads = result["default_threads"]
        for key, label in (
            ("model_fused_forward", "model only, fused LSTM"),
            ("model_gate_path_trace", "model with every gate (`model.trace`)"),
            ("pipeline_push_one_hop_with_gates", "full pipeline: `StreamingRecognizer.push` of one hop, gates"),
        ):
            one, many = result["timings"]["1_thread"][key], result["timings"][f"{threads}_thread"][key]
            target = result["target"] if key == "pipeline_push_one_hop_with_gates" else None
            out.append((
                f"1 s window: {label}",
                f"{one['median_ms']:.2f} ms (p95 {one['p95_ms']:.2f}{_cpu(one)}) 1 thread; "
                f"{many['median_ms']:.2f} ms (p95 {many['p95_ms']:.2f}) {threads} threads",
                (f"<= {target['limit_ms']:g} ms CPU, 1 thread" if "CPU" in target["what"] else f"< {target['limit_ms']:g} ms, 1 thread")
                if target else "",
                _mark(target),
            ))
    elif name == "streaming":
        r, threads = result["results"]["1_thread"], result["default_threads"]
        many = result["results"][f"{threads}_thread"]
        out.append((
            "live audio, hop 0.1 s: CPU time per second of audio",
            f"1 thread: {r['with_gates']['core_share']:.1%} of a core with gates, {r['without_gates']['core_share']:.1%} without; "
            f"{threads} threads: {many['with_gates']['core_share']:.1%} with gates, {many['without_gates']['core_share']:.1%} without",
            f"<= {result['target']['limit']:.1%}, 1 thread",
            _mark(result["target"]),
        ))
    elif name == "classify":
        for data, label in (("generated", "generated 1 s clips"), ("real_speech_commands", "real Speech Commands clips")):
            if data in result["results"]:
                r = result["results"][data]
                target = result["target"] if data == "generated" else None
                threads = result["default_threads"]
                out.append((
                    f"`speechcmd classify --json` on {r['subprocess_end_to_end']['clips']} {label}",
                    f"end to end (subprocess, start-up included): {r['subprocess_end_to_end']['clips_per_second']:.0f} clips/s "
                    f"{threads} threads, {r['subprocess_end_to_end_1_thread']['clips_per_second']:.0f} clips/s 1 thread, "
                    f"{r['subprocess_end_to_end_omp_passive']['clips_per_second']:.0f} clips/s {threads} threads with "
                    f"OMP_WAIT_POLICY=PASSIVE; "
                    f"in-process: {r['in_process']['clips_per_second']:.0f} clips/s {threads} threads, "
                    f"{r['in_process_1_thread']['clips_per_second']:.0f} clips/s 1 thread; "
                    f"peak {r['subprocess_end_to_end']['peak_rss_mb']:.0f} MB"
                    + (f"; beyond start-up, 1 thread: {r['beyond_start_up_1_thread']['clips_per_cpu_second']:.0f} clips per CPU-second"
                       if (r.get("beyond_start_up_1_thread") or {}).get("clips_per_cpu_second") else ""),
                    (f">= {target['limit']:,.0f} clips per CPU-second beyond start-up, 1 thread" if "CPU-second" in target["what"]
                     else f"> {target['limit']:.0f} clips/s") if target else "",
                    _mark(target),
                ))
    elif name == "cold_start":
        r = result["classify_one_file"]
        out.append((
            "cold start: `speechcmd classify` on one file",
            f"{r['median_seconds']:.2f} s median of {r['runs']} (`--help` alone {result['help_only']['median_seconds']:.2f} s); "
            f"peak {r['peak_rss_mb']:.0f} MB",
            "", "",
        ))
    elif name == "training":
        cached, uncached = result["results"]["cached"], result["results"]["uncached"]
        model = result["model_config"]
        out.append((
            f"training on the CPU ({model['cell']} {model['hidden_size']} x {model['num_layers']}, "
            f"{'speech embedding' if model['features'].get('kind') == 'speech_embedding' else str(model['features']['n_mfcc']) + ' MFCC'}"
            f" every {model['features']['hop_ms']:g} ms, "
            f"batch {result['train_config']['batch_size']}, {result['train_clips']} training clips)",
            f"with clip cache {cached['clips_per_second']:.0f} clips/s, epoch ~{cached['epoch_seconds_extrapolated']:.0f} s; "
            f"decoding every batch {uncached['clips_per_second']:.0f} clips/s, epoch ~{uncached['epoch_seconds_extrapolated']:.0f} s; "
            f"cache x{result['cache_speedup']:.2f} (batch read {cached['batch_read_ms']:.1f} vs {uncached['batch_read_ms']:.1f} ms)",
            "", "",
        ))
    elif name == "gate_path":
        for key, r in result["timings_1_thread"].items():
            same = f"; largest difference from the step loop {r['max_abs_difference']:.1e}"
            out.append((f"gate path, 1 s window: {r['what']}",
                        f"{r['median_ms']:.2f} ms (p95 {r['p95_ms']:.2f}{_cpu(r)}) 1 thread{same}", "", ""))
    return out


def write_readme() -> Path:
    # The runs of this table only: the benchmarks that run on their own (gui_agreement, teaching)
    # keep other results beside them.
    results = [json.loads(path.read_text()) for name in RUNS for path in result_files(name)]
    lines = [
        "# Benchmarks",
        "",
        "Run them all with `python -m bench` (or `python bench/run_all.py`); `--only NAME...` runs some,",
        "`--quick` is a smoke test that writes nothing. Each benchmark runs in a fresh interpreter, so the",
        "peak memory is its own (`ru_maxrss`). The results are in `bench/results/<name>.json`; this table",
        "is regenerated from them. See each module's docstring for exactly what is measured.",
        "`bench/gui_fps.py` (the desktop app's redraw rate) needs Qt and runs on its own; see its docstring.",
        "Three more run on their own, with the real clips, and keep their results beside the table:",
        "`python -m bench.gui_agreement` (the window's streaming path against `speechcmd classify` on",
        "held-out clips: `results/gui_agreement.json`), `python -m bench.robustness` (noise by SNR with",
        "held-out noise kinds, level, other words, silence, long recordings; after",
        "`python scripts/make_room_data.py`) and `python -m bench.teaching` (teaching new words from N takes:",
        "`results/teaching/`).",
        "",
        "| Benchmark | Measured | Target | |",
        "|---|---|---|---|",
    ]
    for result in results:
        for measure, value, target, met in rows(result):
            lines.append(f"| {measure} | {value} | {target} | {met} |")
    lines += ["", "| Benchmark | Model | Peak memory | Machine (load average at start) | Date |", "|---|---|---|---|---|"]
    for result in results:
        m = result["machine"]
        lines.append(
            f"| {result.get('run', result['benchmark'])} | {result.get('model', 'fresh model of the recipe')} | {result['peak_rss_mb']:.0f} MB | "
            f"{m['cpu_count']} CPUs, torch {m['torch']} ({m['torch_default_threads']} threads), load {m['load_average_1min']} | {m['date']} |"
        )
    notes = BENCH / "NOTES.md"
    if notes.is_file():
        lines += ["", notes.read_text().strip()]
    readme = BENCH / "README.md"
    readme.write_text("\n".join(lines) + "\n")
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run the speechcmd benchmarks.")
    parser.add_argument("--only", nargs="+", choices=list(RUNS), metavar="NAME", help=f"some of: {', '.join(RUNS)}")
    parser.add_argument("--quick", action="store_true", help="few repetitions; prints results, writes nothing")
    parser.add_argument("--train-recipe", metavar="OPTIONS", help="`speechcmd train` options to time (quote them)")
    parser.add_argument("--train-steps", type=int, help="training steps to time per variant (default: 30)")
    parser.add_argument("--model", metavar="PATH", help="time this model file instead of the bundled one")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    RESULTS.mkdir(exist_ok=True)
    for name in args.only or RUNS:
        options = dict(settings[RUNS[name][0]])
        if not args.quick:
            options.update(RUN_OPTIONS.get(name, {}))
        if args.model:
            options["model"] = args.model
        if RUNS[name][0] == "training":
            if args.train_recipe:
                options["recipe"] = args.train_recipe
            if args.train_steps:
                options["steps"] = args.train_steps
        started = time.perf_counter()
        print(f"{name}: running ...", file=sys.stderr, flush=True)
        result = run_benchmark(name, options)
        print(f"{name}: done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        for measure, value, target, met in rows(result):
            print(f"  {measure}: {value} {target} {met}", file=sys.stderr)
        if args.model:
            result["model_given"] = True
        if not args.quick:
            stem = f"{name}@{Path(args.model).stem}" if args.model else name
            (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    if not args.quick:
        print(f"wrote {write_readme().relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
