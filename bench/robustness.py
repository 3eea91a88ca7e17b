"""Robustness suite: how a model holds up where a room begins, on one split's speakers.

    python -m bench.robustness --model resources/models/speechcmd-lstm.pt --split validation
    python -m bench.robustness --model runs/room1/best.pt --split validation --json runs/room1/robustness.json

Every condition is scored through the path `speechcmd classify` takes for a clip (`fit_to_window`,
then `Classifier.probabilities`), on the clips of the chosen split of `--data` (speakers split as
`--validation-fraction`/`--test-fraction`/`--split-salt` say: the recipe's split by default).
Tune on `validation`; `test` is for the final figure only.

| condition | what | figure |
|---|---|---|
| clean | every clip as recorded, silence included | accuracy |
| noise SNR 20/10/0 | words with held-out everyday noise (`--noise`, dishes and cat) at that SNR over the word | accuracy |
| babble 20 | words with 5-talker flite babble (held out: training babble is espeak-ng) at 20 dB SNR | accuracy |
| talk 20/10 | words with people talking (`talk*.wav`: two continuous held-out talkers, turns of 5-15 s) at that SNR | accuracy |
| level -20/-30 | words 20 and 30 dB quieter (then 16-bit, as a file would be) | accuracy |
| non-command words | `_unknown_` clips (other words) | share NOT taken for a command |
| everyday noise only, babble only, talk only | 1 s of held-out everyday noise / flite babble / talk at -60..-20 dBFS | share taken for a command |
| digital silence, room tone | zeros; pink noise at -70 dBFS and held-out everyday noise at -60 dBFS | share labelled `_silence_`, share taken for a command |
| stream quiet / noise 10 / babble 10 / talk 10 | words at random times over room tone (`--quiet-minutes`) / held-out everyday noise / held-out flite babble / held-out talk (people talking in the room) 10 dB under the words (`--minutes` each), scanned like `classify` scans a long file with the model's detection policy, and at thresholds 0.5 to 0.8 with its averaging and suppression | found, wrong label, false alarms per hour; found / false alarms per hour at each threshold |

SNR is word active level minus noise level, as `speechcmd.train.noise` defines them (the same
definition training uses). Noise cuts start at seeded random offsets, so runs are comparable. For a
model with stream context (whose windows hear 380 ms around them) the noise, babble and room tone
go on around the window, as in a room: the same cuts, continued in their recordings; a clean or
quieter word is a clip alone, in silence.

The recordings are an hour long each: issue 10 allows 5 false alarms per hour in the quiet one and
12 in the noisy one, and in 10 minutes (the noisy and babble recordings' length until 2026-12-01
night) a single false alarm is already 6 per hour. An hour of a split's words repeats each clip
about three times, in new places and after new neighbours, so its found rate stays close to the
split's command accuracy; the false alarms are what the hour resolves.

Each recording is also scored along thresholds (`CURVE`): two models compare at equal false alarms
there, where each at its own policy (chosen on other validation recordings) may sit at another
point of the same curve. Two seeds of one recipe found 3.1 points apart in a quiet validation hour
at their own policies (thresholds 0.6 and 0.7), and 1 to 2 points apart at equal thresholds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from bench.common import ROOT

DEFAULT_DATA = ROOT / "runs" / "room-data" / "merged"
DEFAULT_NOISE = ROOT / "runs" / "room-data" / "heldout_noise"
SNRS = (20, 10, 0)
CURVE = (0.5, 0.6, 0.7, 0.8)  # thresholds each recording is also scored at, with the model's averaging and suppression
LEVELS = (-20, -30)
TALK_SNRS = (20, 10)


def _noise_cuts(recordings: list[np.ndarray], count: int, samples: int, rng: np.random.Generator, context: int = 0) -> np.ndarray:
    """(count, samples + 2 context) cuts from random recordings at random offsets: the cut and
    `context` samples of the recording on each side of it (wrapping around its ends)."""
    cuts = np.empty((count, samples + 2 * context), np.float32)
    for k in range(count):
        recording = recordings[rng.integers(len(recordings))]
        start = rng.integers(0, len(recording) - samples)
        cuts[k] = np.take(recording, np.arange(start - context, start + samples + context), mode="wrap")
    return cuts


def _as_file(windows: np.ndarray) -> np.ndarray:
    """What a 16-bit file of these samples would load as."""
    return (np.round(np.clip(windows, -1, 1) * 32767) / 32767).astype(np.float32)


def _mix(words: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Words with noise at `snr_db`; noise longer than the words goes on around them (its
    context), scaled as its middle, the part under the words, is."""
    from speechcmd.train.noise import active_power_db, power_db

    context = (noise.shape[1] - words.shape[1]) // 2
    middle = torch.from_numpy(noise[:, context : noise.shape[1] - context])
    gain = 10 ** ((active_power_db(torch.from_numpy(words)) - snr_db - power_db(middle)) / 20)
    scene = noise * gain.numpy()[:, None]
    scene[:, context : scene.shape[1] - context] += words
    return _as_file(scene)


def run_suite(model, data: Path, noise_dir: Path, split: str, split_parameters: dict, seed: int = 0, stream_minutes: float = 60.0,
              quiet_minutes: float = 60.0) -> dict:
    from speechcmd.model.audio import load_audio
    from speechcmd.model.detection import NON_COMMANDS
    from speechcmd.model.inference import Classifier, fit_to_window
    from speechcmd.train.data import SILENCE, UNKNOWN, DatasetError, build_dataset, clip_samples, trained_speakers
    from speechcmd.train.noise import scale_to_db

    classifier = Classifier(model)
    labels = model.labels
    samples = classifier.window_samples
    dataset = build_dataset(data, **split_parameters)
    metadata = getattr(model, "metadata", None) or {}
    heard = trained_speakers(metadata, dataset.speakers(split))
    if heard:  # a refit (--validation-fraction 0) trained on the validation speakers
        raise DatasetError(
            f"{metadata.get('path', 'the model')} was trained on {len(heard)} of the {split} speakers ({metadata.get('split')}); "
            "measure it on speakers it never heard (--split test)."
        )
    items = dataset.splits[split]
    noise: dict = {}  # silence cut from the noise recordings (data without _silence_ clips): each decoded once
    windows = np.stack([fit_to_window(clip_samples(clip, classifier.sample_rate, samples, noise), samples) for clip, _ in items])
    names = [dataset.labels[y] for _, y in items]
    truth = np.array([labels.index(name) for name in names])
    is_word = np.array([name != SILENCE for name in names])
    is_unknown = np.array([name == UNKNOWN for name in names])
    command = np.array([label not in NON_COMMANDS for label in labels])
    silence = labels.index(SILENCE)
    rng = np.random.default_rng(seed)

    everyday = [load_audio(p, classifier.sample_rate) for p in sorted(noise_dir.glob("*.wav")) if not p.name.startswith(("babble", "talk"))]
    babble = [load_audio(p, classifier.sample_rate) for p in sorted(noise_dir.glob("babble*.wav"))]
    talk = [load_audio(p, classifier.sample_rate) for p in sorted(noise_dir.glob("talk*.wav"))]
    words = windows[is_word]
    word_truth = truth[is_word]

    # A model with stream context hears the room around a window: its noise goes on there.
    context = model.config.features.context_samples if model.config.features.stream_context else 0

    def predict(batch: np.ndarray) -> np.ndarray:
        if batch.shape[1] > samples:  # scenes with their context
            return classifier.probabilities_in_context(batch).argmax(axis=-1)
        return classifier.probabilities(batch).argmax(axis=-1)

    def accuracy(batch: np.ndarray, target: np.ndarray, predictions: np.ndarray | None = None) -> dict:
        predictions = predict(batch) if predictions is None else predictions
        return {"accuracy": round(float((predictions == target).mean()), 4), "n": int(len(target))}

    clean = predict(windows)  # once: the clean words and unknown words are parts of it
    results = {"clean": accuracy(windows, truth, clean), "clean_words": accuracy(words, word_truth, clean[is_word])}
    for snr in SNRS:
        results[f"noise_snr_{snr}"] = accuracy(_mix(words, _noise_cuts(everyday, len(words), samples, rng, context), snr), word_truth)
    if babble:
        results["babble_snr_20"] = accuracy(_mix(words, _noise_cuts(babble, len(words), samples, rng, context), 20), word_truth)
    talk_rng = np.random.default_rng(seed + 3)  # its own draws: the rows measured before talk was added stay as they were
    for snr in TALK_SNRS if talk else ():
        results[f"talk_snr_{snr}"] = accuracy(_mix(words, _noise_cuts(talk, len(words), samples, talk_rng, context), snr), word_truth)
    for level in LEVELS:
        results[f"level_{level}"] = accuracy(_as_file(words * 10 ** (level / 20)), word_truth)
    unknown_predictions = clean[is_unknown]
    results["non_command_rejected"] = {"share": round(float((~command[unknown_predictions]).mean()), 4), "n": int(is_unknown.sum())}

    count = 200
    for name, recordings, draws in (("everyday_noise_only", everyday, rng), ("babble_only", babble, rng), ("talk_only", talk, talk_rng)):
        if not recordings:
            continue
        levels = torch.from_numpy(draws.uniform(-60, -20, count)).float()
        noise_only = _as_file(scale_to_db(torch.from_numpy(_noise_cuts(recordings, count, samples, draws, context)), levels).numpy())
        results[f"{name}_taken_for_command"] = {"share": round(float(command[predict(noise_only)].mean()), 4), "n": count}
    pink = np.fft.irfft(np.fft.rfft(rng.standard_normal((50, samples))) / np.sqrt(np.maximum(np.fft.rfftfreq(samples, 1 / 16_000), 20)), samples)
    pink = np.take(pink, np.arange(-context, samples + context), axis=1, mode="wrap")
    room_tone = np.concatenate([
        scale_to_db(torch.from_numpy(pink).float(), -70.0).numpy(),
        scale_to_db(torch.from_numpy(_noise_cuts(everyday, 50, samples, rng, context)), -60.0).numpy(),
    ])
    room_tone_predictions = predict(_as_file(room_tone))
    results["room_tone_is_silence"] = {"share": round(float((room_tone_predictions == silence).mean()), 4), "n": len(room_tone)}
    results["room_tone_taken_for_command"] = {"share": round(float(command[room_tone_predictions].mean()), 4), "n": len(room_tone)}
    results["digital_silence"] = labels[int(predict(np.zeros((1, samples), np.float32))[0])]
    results["eight_ms_file"] = labels[int(predict(fit_to_window(_as_file(0.01 * np.random.default_rng(1).standard_normal(128)), samples)[None])[0])]
    # Long recordings of these speakers' words, scanned by the `classify` detector with the model's own policy.
    from speechcmd.model.detection import DetectionPolicy
    from speechcmd.train.streaming_eval import evaluate_stream, load_words

    spoken = load_words(data, labels, split_parameters, split, classifier.sample_rate)
    scanner = Classifier(model, policy=DetectionPolicy.for_model(model))
    results["stream_quiet"] = evaluate_stream(scanner, spoken, quiet_minutes * 60, seed, curve=CURVE)
    results["stream_noise_snr_10"] = evaluate_stream(scanner, spoken, stream_minutes * 60, seed + 1, np.concatenate(everyday), 10.0, curve=CURVE)
    if babble:
        results["stream_babble_snr_10"] = evaluate_stream(scanner, spoken, stream_minutes * 60, seed + 2, np.concatenate(babble), 10.0, curve=CURVE)
    if talk:
        results["stream_talk_snr_10"] = evaluate_stream(scanner, spoken, stream_minutes * 60, seed + 3, np.concatenate(talk), 10.0, curve=CURVE)
    return {"split": split, "speakers": len(dataset.speakers(split)), "data": str(data), "noise": str(noise_dir),
            "split_parameters": split_parameters, "results": results}


def format_table(report: dict) -> str:
    lines = [f"{report['split']} split, {report['speakers']} speakers ({report['data']})"]
    for name, value in report["results"].items():
        if name.startswith("stream"):
            lines.append(f"  {name:38s} found {value['found_rate']:.1%}, wrong {value['wrong_rate']:.1%}, "
                         f"{value['false_alarms_per_hour']:.0f} false alarms per hour ({value['commands']} commands, "
                         f"{value['seconds'] / 60:.0f} min)")
            if value.get("curve"):
                lines.append(f"  {'':38s} at threshold " + ", ".join(
                    f"{point['threshold']}: {point['found_rate']:.1%} / {point['false_alarms_per_hour']:.0f}" for point in value["curve"]))
        elif isinstance(value, dict):
            figure = value.get("accuracy", value.get("share"))
            lines.append(f"  {name:38s} {figure:7.1%}  (n={value['n']})")
        else:
            lines.append(f"  {name:38s} {value}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from speechcmd.model.checkpoint import load_model
    from speechcmd.train.data import DatasetError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the bundled model)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder-per-label data (default: %(default)s, from scripts/make_room_data.py)")
    parser.add_argument("--noise", type=Path, default=DEFAULT_NOISE, help="held-out noise recordings (default: %(default)s)")
    parser.add_argument("--split", choices=["validation", "test"], default="validation")
    parser.add_argument("--validation-fraction", type=float, default=0.08)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--split-salt", default="speechcmd")
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the noisy and babble recordings (default: %(default)s)")
    parser.add_argument("--quiet-minutes", type=float, default=60.0, help="length of the quiet recording (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(args.model)
    split = {"labels": "12", "validation_fraction": args.validation_fraction, "test_fraction": args.test_fraction, "salt": args.split_salt}
    try:
        report = run_suite(model, args.data, args.noise, args.split, split, stream_minutes=args.minutes, quiet_minutes=args.quiet_minutes)
    except DatasetError as error:
        print(f"bench.robustness: {error}", file=sys.stderr)
        return 2
    report["model"] = str(args.model or "bundled")
    print(format_table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
