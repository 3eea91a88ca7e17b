"""Teaching the bundled model a new word from N real takes, measured on other speakers.

    python -m bench.teaching                     # writes bench/results/teaching/all.json
    python -m bench.teaching --quick             # one word, N = 8, one draw; writes nothing

For each word that is not one of the bundled model's labels (default: zero, nine, eight, happy,
from ../shared/data/speech_commands_extra plus the `_unknown_` clips of that word in
../shared/data/speech_commands_12), N clips are the takes: in draw 0 from the speakers with the
most clips (the fewest people), in later draws from speakers in a random order;
the word's clips of every OTHER speaker who is not among the base model's training speakers
(rebuilt from its metadata) are the test. Measured per run:

- new word: share of the test clips recognized as the new word; also with the test clips played
  30 dB quieter (`QUIET_DB`: a distant talker or a low microphone gain, as in the robustness suite);
- false accepts: share of other clips taken for the new word: the base model's held-out test
  clips (less any of the word itself) and the other words of speech_commands_extra (unseen speakers);
- original commands: accuracy on those held-out test clips, before and after (a prediction of
  the new word counts as an error);
- time: `adapt` wall time, leave-some-out folds included (what the user waits for), and its CPU
  time (adapt runs on one thread, so on an idle machine the wall time is about the CPU time).

Three settings: `replay` (40 clips of each base label from the base model's training speakers, and
its background noise: what `speechcmd adapt` and the app do where that data is), `bank` (the
features of such clips shipped beside the bundled model, plus two background takes cut from the
noise recordings: what they do elsewhere) and `takes only` (`--no-replay`: the takes and the two
background takes).
Single speaker: for each speaker with 5 or more clips of a word, leave one out: teach 4, test the 5th.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.common import REAL_DATA, machine

EXTRA = Path(os.environ.get("SPEECHCMD_EXTRA_DATA", REAL_DATA.parent / "speech_commands_extra"))
# Its own folder: bench.run_all tabulates results/*.json, which all carry its benchmarks' fields.
RESULTS = Path(__file__).resolve().parent / "results" / "teaching"
WORDS = ("zero", "nine", "eight", "happy")
SETTINGS = ("replay", "bank", "takes only")
QUIET_DB = -30.0


def word_clips(word: str) -> list[Path]:
    return sorted((EXTRA / word).glob("*.wav")) + sorted((REAL_DATA / "_unknown_").glob(f"{word}_*.wav"))


def predict(model, windows: np.ndarray) -> np.ndarray:
    from speechcmd.model.inference import Classifier

    return Classifier(model).probabilities(windows).argmax(-1)


def load_windows(paths: list[Path], window: int) -> np.ndarray:
    from speechcmd.model.audio import load_audio
    from speechcmd.model.inference import fit_to_window

    return np.stack([fit_to_window(load_audio(p), window) for p in paths]) if paths else np.zeros((0, window), np.float32)


def run(options: dict) -> dict:
    from speechcmd.model.checkpoint import load_model
    from speechcmd.train.adapt import AdaptConfig, bundled_replay_bank, replay_takes
    from speechcmd.train.data import build_dataset, speaker_of
    from speechcmd.train.takes import TakeError, load_take, prepare_take

    at_start = machine()  # the load average of the machine as the benchmark began
    base = load_model()
    window = base.config.features.window_samples
    split = build_dataset(REAL_DATA, **base.metadata["split_parameters"])
    base_train_speakers = split.speakers("train")
    test_items = split.splits["test"]
    test_paths = [clip.path for clip, _ in test_items]
    test_targets = np.array([y for _, y in test_items])
    test_windows = load_windows(test_paths, window)
    before = predict(base, test_windows)
    settings = dict(options.get("adapt", {}))
    if isinstance(settings.get("augment"), dict):  # AugmentConfig fields, as JSON
        from speechcmd.train.config import AugmentConfig

        settings["augment"] = AugmentConfig(**settings["augment"])
    config = AdaptConfig(**settings)
    words = options.get("words", WORDS)
    replay, noise = replay_takes(base, REAL_DATA, config.replay_per_label, avoid_words=words, seed=0)
    bank = bundled_replay_bank(base)
    background = [prepare_take(noise[k * 200_000 : k * 200_000 + 2 * window], "_silence_", f"noise cut {k}", window) for k in range(2)]
    others = {w: word_clips(w) for w in sorted(p.name for p in EXTRA.iterdir() if p.is_dir())}
    results = []
    for word in words:
        clips = word_clips(word)
        by_speaker = defaultdict(list)
        for path in clips:
            by_speaker[speaker_of(path)].append(path)
        unseen = [s for s in by_speaker if s not in base_train_speakers]
        # Speakers with the most clips teach (as a user and a few friends would); the rest test.
        # The other words' clips of unseen speakers measure false accepts.
        other_paths = [p for w, paths in others.items() if w != word for p in paths if speaker_of(p) not in base_train_speakers]
        other_windows = load_windows(other_paths, window)
        keep = np.array([not p.name.startswith(f"{word}_") for p in test_paths])
        before_accuracy = float((before[keep] == test_targets[keep]).mean())
        for n in options.get("takes", (4, 8, 16)):
            for draw in range(options.get("draws", 3)):
                # Draw 0: the speakers with the most clips (the fewest people); later draws: a random order.
                rng = random.Random(draw)
                speakers = sorted(by_speaker, key=lambda s: (-len(by_speaker[s]) if draw == 0 else 0, rng.random()))
                takes, teachers, refused = [], [], 0
                for speaker in speakers:
                    if len(takes) >= n:
                        break
                    teachers.append(speaker)
                    for path in by_speaker[speaker][: n - len(takes)]:
                        try:  # a clip the Teach panel would refuse is recorded again by its user
                            takes.append(load_take(path, word, window))
                        except TakeError:
                            refused += 1
                tests = [p for s in unseen if s not in teachers for p in by_speaker[s]]
                test_windows_word = load_windows(tests, window)
                for setting in options.get("settings", SETTINGS):
                    started, cpu_started = time.perf_counter(), time.process_time()
                    adapted = teach(base, takes, setting, config, replay, noise, background, bank)
                    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
                    model = adapted.model
                    new = model.labels.index(word)
                    after = predict(model, test_windows)
                    row = {
                        "word": word, "takes": n, "draw": draw, "setting": setting, "teaching_speakers": len(teachers),
                        "refused_clips": refused, "test_clips": len(tests), "test_speakers": len({speaker_of(p) for p in tests}),
                        "new_word_accuracy": round(float((predict(model, test_windows_word) == new).mean()), 4),
                        "new_word_accuracy_quiet": round(float((predict(model, test_windows_word * 10 ** (QUIET_DB / 20)) == new).mean()), 4),
                        "false_accepts_test_set": round(float((after[keep] == new).mean()), 4),
                        "false_accepts_other_words": round(float((predict(model, other_windows) == new).mean()), 4),
                        "commands_before": round(before_accuracy, 4),
                        "commands_after": round(float((after[keep] == test_targets[keep]).mean()), 4),
                        "held_out_takes_accuracy": adapted.report["held_out_word_accuracy"],
                        "seconds": round(seconds, 2),
                        "cpu_seconds": round(cpu_seconds, 2),  # what it costs on an idle machine (one thread)
                    }
                    results.append(row)
                    print(json.dumps(row), flush=True)
    single = single_speaker(base, options, config, replay, noise, background, words, bank) if options.get("single_speaker", True) else []
    return {"benchmark": "teaching", "machine": at_start, "load_average_at_end": round(os.getloadavg()[0], 2),
            "adapt_config": config.__dict__ | {"augment": None},
            "runs": results, "single_speaker": single, "summary": summarize(results, single)}


def teach(base, takes, setting: str, config, replay, noise, background, bank):
    """`replay`: with clips of the base words and the noise recordings; `bank`: with the replay bank
    shipped with the bundled model, and two background takes; `takes only`: two background takes."""
    from speechcmd.train.adapt import adapt

    if setting == "replay":
        return adapt(base, takes, config, replay=replay, noise=noise)
    return adapt(base, takes + background, config, bank=bank if setting == "bank" else None)


def single_speaker(base, options, config, replay, noise, background, words, bank) -> list[dict]:
    """Leave one out over each speaker who said a word at least 5 times: teach 4, test the 5th."""
    from speechcmd.train.adapt import adapt
    from speechcmd.train.data import speaker_of
    from speechcmd.train.takes import TakeError, load_take

    window = base.config.features.window_samples
    rows = []
    for word in words:
        by_speaker = defaultdict(list)
        for path in word_clips(word):
            by_speaker[speaker_of(path)].append(path)
        for speaker, paths in sorted(by_speaker.items()):
            if len(paths) < 5:
                continue
            paths = paths[:5]
            for setting in options.get("settings", SETTINGS):
                hits, seconds = 0, []
                for k in range(5):
                    takes = []
                    for i, path in enumerate(paths):
                        try:  # a clip the Teach panel would refuse is recorded again by its user
                            takes += [load_take(path, word, window)] if i != k else []
                        except TakeError:
                            pass
                    started = time.perf_counter()
                    adapted = teach(base, takes, setting, config, replay, noise, background, bank)
                    seconds.append(time.perf_counter() - started)
                    hits += int(predict(adapted.model, load_windows([paths[k]], window))[0] == adapted.model.labels.index(word))
                row = {"word": word, "speaker": speaker, "setting": setting, "trials": 5, "recognized": hits,
                       "seconds_median": round(float(np.median(seconds)), 2)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def summarize(results: list[dict], single: list[dict]) -> list[dict]:
    summary = []
    for setting in sorted({r["setting"] for r in results}):
        for n in sorted({r["takes"] for r in results}):
            rows = [r for r in results if r["takes"] == n and r["setting"] == setting]
            tests = sum(r["test_clips"] for r in rows)
            summary.append({
                "setting": setting, "takes": n, "runs": len(rows),
                "new_word_accuracy": round(sum(r["new_word_accuracy"] * r["test_clips"] for r in rows) / tests, 4),
                "new_word_accuracy_worst_run": min(r["new_word_accuracy"] for r in rows),
                "new_word_accuracy_quiet": round(sum(r.get("new_word_accuracy_quiet", np.nan) * r["test_clips"] for r in rows) / tests, 4),
                "false_accepts_test_set": round(float(np.mean([r["false_accepts_test_set"] for r in rows])), 4),
                "false_accepts_other_words": round(float(np.mean([r["false_accepts_other_words"] for r in rows])), 4),
                "commands_change_points": round(100 * float(np.mean([r["commands_after"] - r["commands_before"] for r in rows])), 2),
                "commands_change_worst_points": round(100 * min(r["commands_after"] - r["commands_before"] for r in rows), 2),
                "seconds_median": round(float(np.median([r["seconds"] for r in rows])), 2),
                "seconds_max": max(r["seconds"] for r in rows),
                "cpu_seconds_median": round(float(np.median([r.get("cpu_seconds", np.nan) for r in rows])), 2),
            })
    for setting in sorted({r["setting"] for r in single}):
        rows = [r for r in single if r["setting"] == setting]
        summary.append({"setting": f"single speaker, {setting}", "takes": 4, "speakers": len(rows),
                        "recognized": f"{sum(r['recognized'] for r in rows)} of {sum(r['trials'] for r in rows)}"})
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one word, 8 takes, one draw; nothing written")
    parser.add_argument("--words", nargs="+", default=list(WORDS))
    parser.add_argument("--takes", nargs="+", type=int, default=[4, 8, 16])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS))
    parser.add_argument("--adapt", default="{}", help="AdaptConfig fields as JSON, e.g. '{\"steps\": 200}'")
    parser.add_argument("--no-single-speaker", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "all.json"))
    args = parser.parse_args()
    if not (REAL_DATA / "yes").is_dir() or not EXTRA.is_dir():
        raise SystemExit(f"needs {REAL_DATA} and {EXTRA} (set SPEECHCMD_DATA / SPEECHCMD_EXTRA_DATA).")
    options = {"words": args.words, "takes": args.takes, "draws": args.draws, "settings": args.settings,
               "adapt": json.loads(args.adapt), "single_speaker": not args.no_single_speaker}
    if args.quick:
        options.update(words=args.words[:1], takes=[8], draws=1, single_speaker=False)
    result = run(options)
    print(json.dumps(result["summary"], indent=1))
    if not args.quick:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
