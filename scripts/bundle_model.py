"""Turn a training run into the bundled model: measure it on its held-out test speakers through
the same path `speechcmd classify` takes, choose its detection operating point on long recordings
of its VALIDATION speakers, record both in its metadata, and write
resources/models/speechcmd-lstm.pt (or --out) with its confusion matrix and learning curves beside it
(for another --out, named after it: speechcmd-mfcc-lstm.confusion.png).

    python scripts/bundle_model.py runs/room1 --data ../shared/data/speech_commands_12 --policy-data runs/room-data/merged

The operating point ("detection_policy", read by `DetectionPolicy.for_model`) is the policy of
`speechcmd.train.streaming_eval.POLICY_GRID` that finds the most commands in two recordings of
the validation speakers' words, `--quiet-minutes` over a quiet room tone and `--minutes` over the
TRAINING noise recordings of `--policy-data` 10 dB under the words, within `--budgets` false
alarms per hour (the room targets' 5 and 12; docs/experiment-log.md shows what each costs). A third
budget adds a third recording, `--minutes` of the training babble alone (its noise files named
*babble*) 10 dB under the words, with that budget: people talking in the room. The held-out noise of the robustness suite plays no part in it.
The recordings are long because false alarms are rare: in 30 minutes one more is 2 per hour, and
two seeds of one recipe chose thresholds 0.6 and 0.7 from a false alarm or two.

A refit of a chosen recipe on the train and validation speakers (`speechcmd train
--validation-fraction 0`, the shipped model since 2026-12-02) has no validation speakers to choose
on: `--policy-from` copies the operating point chosen for the recipe's own run instead.

    python scripts/bundle_model.py runs/refit --data runs/room-data/merged --policy-from runs/embedding/bundled.pt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from speechcmd.model.checkpoint import BUNDLED_MODEL_NAME, model_from_checkpoint, read_checkpoint, save_checkpoint
from speechcmd.train.evaluate import evaluate_clips, split_files
from speechcmd.train.data import build_dataset
from speechcmd.train.loop import plot_curves
from speechcmd.train.metrics import format_report, plot_confusion


def choose_operating_point(model, data: Path, split: dict, minutes: tuple[float, float], budgets: tuple[float, ...]):
    """`minutes`: the quiet and the noisy recording's length; `budgets`: their false alarms per hour,
    and the babble recording's (as long as the noisy one) if there is a third."""
    import numpy as np

    from speechcmd.model.inference import Classifier
    from speechcmd.train.data import load_noise
    from speechcmd.train.streaming_eval import build_stream, choose_policy, load_words, score_windows

    classifier = Classifier(model)  # windows on the model's own grid (80 ms with stream context)
    words = load_words(data, model.labels, split, "validation")
    files = build_dataset(data, **split).noise_files
    streams = {}
    recordings = [("quiet", None, None, minutes[0], budgets[0], 10), ("noise_snr_10", load_noise(files), 10.0, minutes[1], budgets[1], 11)]
    if len(budgets) > 2:
        babble = [path for path in files if "babble" in path.name]
        if not babble:
            raise SystemExit(f"{data}: no training noise file is named *babble*; give two --budgets, or add babble recordings")
        recordings.append(("babble_snr_10", load_noise(babble), 10.0, minutes[1], budgets[2], 12))
    for name, background, snr, length, budget, seed in recordings:
        audio, events = build_stream(words, length * 60, np.random.default_rng(seed), background, snr)
        streams[name] = (score_windows(classifier, audio), events, len(audio) / classifier.sample_rate, budget)
    policy, rows = choose_policy(streams, hop_seconds=classifier.policy.hop_seconds)
    return policy, next(r for r in rows if r["policy"] == policy.to_dict()), rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder with best.pt")
    parser.add_argument("--data", required=True, type=Path, help="the dataset folder it was trained on")
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "models" / BUNDLED_MODEL_NAME)
    parser.add_argument("--split", type=json.loads, help="split parameters as JSON, for runs older than their metadata field")
    parser.add_argument("--policy-data", type=Path, help="the training data folder: choose the detection policy on its validation speakers (default: keep the run's)")
    parser.add_argument("--policy-from", type=Path, metavar="MODEL",
                        help="copy the detection policy, and the validation figures it was chosen on, from this model file: for a "
                             "refit on train + validation speakers (--validation-fraction 0), which has none left to choose on, give "
                             "the bundled run of the same recipe")
    parser.add_argument("--budgets", type=float, nargs="+", default=[5.0, 12.0], metavar="PER_HOUR",
                        help="false alarms per hour allowed on the quiet and the noisy validation recording, and, if given, "
                             "on a third one with babble (default: the room targets' 5 12; for the speech-embedding model they cost "
                             "1 point of commands found against 12 12)")
    parser.add_argument("--describe", default="Speech Commands v0.02 subset ({data}), CC BY 4.0, Pete Warden, Google",
                        help="what it was trained on, for its metadata ({data}: the --data folder's name)")
    parser.add_argument("--summary", help="its one line in the window's Model menu (what it is, its cost, its headline "
                                          "figures; scripts/set_summary.py writes it later, once they are measured)")
    parser.add_argument("--quiet-minutes", type=float, default=120.0, help="length of the quiet validation recording for the policy (default: %(default)s)")
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the noisy validation recording for the policy (default: %(default)s)")
    args = parser.parse_args()
    if len(args.budgets) not in (2, 3):
        parser.error("--budgets takes two numbers (quiet, noise) or three (quiet, noise, babble)")

    data = read_checkpoint(args.run / "best.pt")
    model = model_from_checkpoint(data, args.run / "best.pt")
    metadata = {k: v for k, v in data["metadata"].items() if k not in ("speechcmd_version", "saved_at")}
    split = metadata.get("split_parameters") or args.split
    if split is None:
        raise SystemExit("the run has no split_parameters in its metadata; pass --split '{...}'")
    if args.policy_data and args.policy_from:
        raise SystemExit("give --policy-data (choose a policy) or --policy-from (copy one), not both")
    if args.policy_data and not split.get("validation_fraction"):
        raise SystemExit(f"{args.run} has no validation speakers (a refit): copy the policy of its recipe's run with --policy-from MODEL")
    chosen = None
    if args.policy_from:
        chosen = read_checkpoint(args.policy_from)["metadata"]
        if "detection_policy" not in chosen:
            raise SystemExit(f"{args.policy_from}: has no detection_policy in its metadata; give a bundled model")
    metadata["split_parameters"] = split
    dataset = build_dataset(args.data, **split)
    with tempfile.TemporaryDirectory() as cuts:
        result, failures = evaluate_clips(model, split_files(dataset, "test", Path(cuts)))
    if failures:
        raise SystemExit(f"{len(failures)} test clips failed to load: {failures[:3]}")
    metadata.update(
        trained_on=args.describe.format(data=args.data.name),
        training_folder=data["metadata"].get("trained_on"),
        held_out_speakers=len(dataset.speakers("test")),
        test_accuracy=result["accuracy"],
        test_per_class=result["per_class"],
        test_confusion=result["confusion"],
        bundled_from=str(args.run),
    )
    # A teacher's path may not outlive it (the previous bundled model is overwritten): its digest does.
    metadata["teacher_sha256"] = [hashlib.sha256(Path(t).read_bytes()).hexdigest() if Path(t).is_file() else None
                                  for t in metadata.get("teachers") or []]
    if args.policy_data:
        policy, row, rows = choose_operating_point(model, args.policy_data, split, (args.quiet_minutes, args.minutes), tuple(args.budgets))
        metadata.update(detection_policy=policy.to_dict(), detection_policy_validation=row)
        (args.run / "policy_curve.json").write_text(json.dumps(rows, indent=1))  # every policy tried: the card's curve
        print(f"detection policy {policy.to_dict()}: {json.dumps({k: row[k] for k in ('quiet', 'noise_snr_10', 'babble_snr_10') if k in row})}")
    if chosen is not None:
        metadata.update(detection_policy=chosen["detection_policy"], detection_policy_validation=chosen.get("detection_policy_validation"),
                        detection_policy_from=chosen.get("bundled_from", str(args.policy_from)))
        print(f"detection policy {chosen['detection_policy']}, as {args.policy_from} (chosen there on validation speakers)")
    if args.summary:
        metadata["summary"] = args.summary
    save_checkpoint(args.out, model, metadata)
    # The default model's plots are confusion.png and learning_curves.png; another's carry its name.
    prefix = "" if args.out.name == BUNDLED_MODEL_NAME else f"{args.out.stem}."
    plot_confusion(result, args.out.parent / f"{prefix}confusion.png", "Held-out test speakers")
    history = [json.loads(line) for line in (args.run / "metrics.jsonl").read_text().splitlines()]
    plot_curves(history, args.out.parent / f"{prefix}learning_curves.png")
    print(format_report(result))
    print(f"\nwrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    print(json.dumps({"test_accuracy": result["accuracy"], "n": result["n"], "speakers": metadata["held_out_speakers"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
