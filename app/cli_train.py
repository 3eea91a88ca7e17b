"""`speechcmd train` and `speechcmd evaluate`: argument parsing and wiring; the work lives in
speechcmd.train and speechcmd.model. Nothing heavy is imported at module level."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from speechcmd.app.cli_common import UserError, add_device_argument, add_model_argument, load_model_or_fail, resolve_device, shown


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Every default is read from the settings classes, so a default changes in one place."""
    from speechcmd.model.config import CELLS, FRONT_ENDS, POOLINGS, FeatureConfig, ModelConfig
    from speechcmd.train.config import OPTIMIZERS, SCHEDULES, AugmentConfig, SplitConfig, TrainConfig

    features, model, training, augment, split = FeatureConfig(), ModelConfig(), TrainConfig(), AugmentConfig(), SplitConfig()

    data = p.add_argument_group("data")
    source = data.add_mutually_exclusive_group()  # one of them, or --resume (the run knows its data)
    source.add_argument("--data", metavar="DIR", help="folder with one sub-folder of recordings per word")
    source.add_argument("--download", choices=["v0.01", "v0.02"], help="download this Speech Commands release")
    data.add_argument("--cache-dir", metavar="DIR", help="downloads and decoded-clip caches (default: $SPEECHCMD_CACHE or ~/.cache/speechcmd)")
    data.add_argument("--labels", default=split.labels, help="12 (10 commands + silence + unknown), 35 (every word) or a comma list (default: %(default)s)")
    data.add_argument("--validation-fraction", type=float, default=split.validation_fraction, help="share of speakers for validation when the data has no list files (default: %(default)s)")
    data.add_argument("--test-fraction", type=float, default=split.test_fraction, help="share of speakers for testing when the data has no list files (default: %(default)s)")
    data.add_argument("--unknown-fraction", type=float, default=split.unknown_fraction, help="keep other words at about this share of each split when they far outnumber it (default: %(default)s)")
    data.add_argument("--split-salt", default=split.salt, help="salt of the speaker hash that assigns splits (default: %(default)s)")

    net = p.add_argument_group("model")
    net.add_argument("--cell", choices=CELLS, default=model.cell, help="recurrent cell (default: %(default)s)")
    net.add_argument("--hidden", type=int, default=model.hidden_size, help="units per layer (default: %(default)s)")
    net.add_argument("--layers", type=int, default=model.num_layers, help="recurrent layers (default: %(default)s)")
    net.add_argument("--dropout", type=float, default=model.dropout, help="dropout between layers and before the head (default: %(default)s)")
    net.add_argument("--pooling", choices=POOLINGS, default=model.pooling, help="summarize the frames by the last step or their mean (default: %(default)s)")
    net.add_argument("--front-end", choices=FRONT_ENDS, default=features.kind, help="mfcc, or speech_embedding: Google's frozen pretrained embedding of log-mel bands, one 96-value frame every 80 ms (the MFCC options below do not apply to it) (default: %(default)s)")
    net.add_argument("--stream-context", action="store_true", default=features.stream_context, help="speech_embedding only: a window's outer frames hear the audio around it, and a stream is embedded once, one frame per 80 ms (a fixed log-mel floor; windows every 80 ms, scored 0.36 s after they end)")
    net.add_argument("--n-mfcc", type=int, default=features.n_mfcc, help="cepstral coefficients per frame (default: %(default)s)")
    net.add_argument("--n-mels", type=int, default=features.n_mels, help="mel bands (default: %(default)s)")
    net.add_argument("--frame-ms", type=float, default=features.frame_ms, help="MFCC analysis frame in ms (default: %(default)s)")
    net.add_argument("--hop-ms", type=float, default=features.hop_ms, help="MFCC frame step in ms, one recurrent time step (default: %(default)s)")
    net.add_argument("--cmn", action="store_true", default=features.window_mean_normalization, help="subtract each window's mean from the coefficients (cepstral mean normalization)")

    opt = p.add_argument_group("optimization")
    opt.add_argument("--epochs", type=int, default=training.epochs, help="(default: %(default)s)")
    opt.add_argument("--batch-size", type=int, default=training.batch_size, help="(default: %(default)s)")
    opt.add_argument("--optimizer", choices=OPTIMIZERS, default=training.optimizer, help="(default: %(default)s)")
    opt.add_argument("--lr", type=float, default=training.learning_rate, help="peak learning rate (default: %(default)s)")
    opt.add_argument("--weight-decay", type=float, default=training.weight_decay, help="(default: %(default)s)")
    opt.add_argument("--schedule", choices=SCHEDULES, default=training.schedule, help="after warm-up (default: %(default)s)")
    opt.add_argument("--warmup-epochs", type=float, default=training.warmup_epochs, help="linear warm-up length (default: %(default)s)")
    opt.add_argument("--clip-grad", type=float, default=training.clip_grad_norm, help="gradient norm clipping, 0 = off (default: %(default)s)")
    opt.add_argument("--label-smoothing", type=float, default=training.label_smoothing, help="(default: %(default)s)")
    opt.add_argument("--patience", type=int, default=training.patience, help="early stop after this many epochs without a better validation accuracy, 0 = off (default: %(default)s)")
    opt.add_argument("--teacher", action="append", default=[], metavar="PATH", help="distill from this trained model (repeat for an ensemble)")
    opt.add_argument("--distill-weight", type=float, default=training.distillation_weight, help="share of the loss that follows the teachers (default: %(default)s)")
    opt.add_argument("--distill-clean", action="store_true", default=training.distill_clean, help="teachers hear each clip before the room (noise, reverberation, level) is added, the student after")
    opt.add_argument("--temperature", type=float, default=training.temperature, help="distillation temperature (default: %(default)s)")
    opt.add_argument("--tune-embedding", type=int, default=training.tune_embedding, metavar="N",
                     help="train the speech embedding's last N convolutions (of 20) too, 0 = keep it frozen (default: %(default)s)")
    opt.add_argument("--tune-lr-scale", type=float, default=training.tune_lr_scale,
                     help="their learning rate, as a share of --lr (default: %(default)s)")
    opt.add_argument("--ema-decay", type=float, default=training.ema_decay, metavar="DECAY",
                     help="validate, keep and test an exponential moving average of the weights with this decay per step, e.g. 0.995; 0 = off (default: %(default)s)")
    opt.add_argument("--seed", type=int, default=training.seed, help="seed for initialization, shuffling and augmentation (default: %(default)s)")
    add_device_argument(opt)
    opt.add_argument("--no-amp", action="store_true", default=not training.amp, help="no mixed precision on CUDA")

    aug = p.add_argument_group("augmentation")
    aug.add_argument("--time-shift-ms", type=float, default=augment.time_shift_ms, help="random shift in +-ms, 0 = off (default: %(default)s)")
    aug.add_argument("--fragments", type=float, default=augment.fragment_probability, help="share of command clips cut so the window hears only the start or the end of the word, as a word that is not a command (default: %(default)s)")
    aug.add_argument("--fragment-noise", action=argparse.BooleanOptionalAction, default=augment.fragment_noise,
                     help="fragments hear background noise as words do; --no-fragment-noise: never, so that a word half masked by noise is not what fragments teach (default: %(default)s)")
    aug.add_argument("--noise-probability", type=float, default=augment.noise_probability, help="share of clips mixed with background noise, 0 = off (default: %(default)s)")
    aug.add_argument("--noise-volume", type=float, default=augment.noise_max_volume, help="largest background-noise gain (default: %(default)s)")
    aug.add_argument("--time-masks", type=int, default=augment.time_masks, help="SpecAugment time masks, 0 = off (default: %(default)s)")
    aug.add_argument("--freq-masks", type=int, default=augment.freq_masks, help="SpecAugment frequency masks, 0 = off (default: %(default)s)")
    aug.add_argument("--speed", type=float, default=augment.speed_range, help="speed perturbation range, e.g. 0.1 for +-10%%, 0 = off (default: %(default)s)")
    aug.add_argument("--room", action="store_true", help="train for a real room: noise at -5..30 dB SNR under the word, level -40..+6 dB over a noise floor, reverberation, muted input (train/config.py ROOM)")
    aug.add_argument("--volume", type=float, default=augment.volume_range, help="volume perturbation range, e.g. 0.3 for +-30%%, 0 = off (default: %(default)s)")

    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", help="run folder for checkpoints, logs and plots (default: runs/<date-time>)")
    out.add_argument("--resume", metavar="PATH", help="continue the run whose last.pt this is, with its data and settings")
    out.add_argument("--overwrite", action="store_true", help="replace a finished or interrupted run already in --out")
    out.add_argument("--quiet", action="store_true", help="no progress bars")


def configs_from_args(args: argparse.Namespace, root: Path, device: str):
    """The dataset, training settings and model settings that `speechcmd train` options describe."""
    from speechcmd.model.config import FeatureConfig, ModelConfig
    from speechcmd.train.config import ROOM, AugmentConfig, TrainConfig
    from speechcmd.train.data import build_dataset

    dataset = build_dataset(root, args.labels, args.validation_fraction, args.test_fraction, args.split_salt,
                            unknown_fraction=args.unknown_fraction, seed=args.seed)
    if not 0 <= args.noise_probability <= 1:  # checked here too: it is zeroed below without noise files
        raise ValueError(f"noise_probability must be a number from 0 to 1, not {args.noise_probability!r}.")
    augment = AugmentConfig(
        time_shift_ms=args.time_shift_ms,
        fragment_probability=args.fragments,
        fragment_noise=args.fragment_noise,
        noise_probability=args.noise_probability if dataset.noise_files else 0.0,
        noise_max_volume=args.noise_volume,
        time_masks=args.time_masks,
        freq_masks=args.freq_masks,
        speed_range=args.speed,
        volume_range=args.volume,
        **(ROOM if args.room else {}),
    )
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, learning_rate=args.lr,
        weight_decay=args.weight_decay, schedule=args.schedule, warmup_epochs=args.warmup_epochs,
        clip_grad_norm=args.clip_grad, label_smoothing=args.label_smoothing, patience=args.patience,
        distillation_weight=args.distill_weight, temperature=args.temperature, distill_clean=args.distill_clean,
        tune_embedding=args.tune_embedding, tune_lr_scale=args.tune_lr_scale, ema_decay=args.ema_decay, seed=args.seed, device=device, amp=not args.no_amp, augment=augment,
    )
    model_config = ModelConfig(
        cell=args.cell, hidden_size=args.hidden, num_layers=args.layers, dropout=args.dropout, pooling=args.pooling,
        features=FeatureConfig.speech_embedding(stream_context=args.stream_context) if args.front_end == "speech_embedding" else FeatureConfig(
            n_mfcc=args.n_mfcc, n_mels=args.n_mels, frame_ms=args.frame_ms, hop_ms=args.hop_ms,
            window_mean_normalization=args.cmn, stream_context=args.stream_context,
        ),
    )
    return dataset, config, model_config


# What a resumed run takes from its checkpoint, by option: (where it is stored, its field name).
# Options not listed (--epochs, --patience, --device, --no-amp, --data, --out, --cache-dir, --quiet)
# say how or how long to go on, and may change when resuming.
RUN_SETTINGS = {
    "cell": ("model", "cell"), "hidden": ("model", "hidden_size"), "layers": ("model", "num_layers"),
    "dropout": ("model", "dropout"), "pooling": ("model", "pooling"),
    "front_end": ("features", "kind"), "n_mfcc": ("features", "n_mfcc"), "n_mels": ("features", "n_mels"), "frame_ms": ("features", "frame_ms"),
    "hop_ms": ("features", "hop_ms"), "cmn": ("features", "window_mean_normalization"),
    "stream_context": ("features", "stream_context"),
    "batch_size": ("training", "batch_size"), "optimizer": ("training", "optimizer"), "lr": ("training", "learning_rate"),
    "weight_decay": ("training", "weight_decay"), "schedule": ("training", "schedule"),
    "warmup_epochs": ("training", "warmup_epochs"), "clip_grad": ("training", "clip_grad_norm"),
    "label_smoothing": ("training", "label_smoothing"), "distill_weight": ("training", "distillation_weight"),
    "temperature": ("training", "temperature"), "distill_clean": ("training", "distill_clean"), "seed": ("training", "seed"),
    "tune_embedding": ("training", "tune_embedding"), "tune_lr_scale": ("training", "tune_lr_scale"), "ema_decay": ("training", "ema_decay"),
    "time_shift_ms": ("augment", "time_shift_ms"), "fragments": ("augment", "fragment_probability"), "fragment_noise": ("augment", "fragment_noise"), "noise_probability": ("augment", "noise_probability"),
    "noise_volume": ("augment", "noise_max_volume"), "time_masks": ("augment", "time_masks"),
    "freq_masks": ("augment", "freq_masks"), "speed": ("augment", "speed_range"), "volume": ("augment", "volume_range"),
    "validation_fraction": ("split", "validation_fraction"), "test_fraction": ("split", "test_fraction"),
    "split_salt": ("split", "salt"), "unknown_fraction": ("split", "unknown_fraction"), "labels": ("split", "labels"), "teacher": ("metadata", "teachers"),
}


def option_sentence(error: ValueError) -> str:
    """A settings class's sentence ("learning_rate must be ...") in the command line's words ("--lr must be ...")."""
    text = str(error)
    field, _, rest = text.partition(" ")
    options = {name: option for option, (_, name) in RUN_SETTINGS.items()} | {"epochs": "epochs", "patience": "patience"}
    return f"--{options[field].replace('_', '-')} {rest}" if field in options and rest else text


def given_options(args: argparse.Namespace) -> dict:
    """The `speechcmd train` options the user typed (not their defaults), by destination."""
    parser = argparse.ArgumentParser(add_help=False)
    add_train_arguments(parser)
    for action in parser._actions:
        action.default, action.required = argparse.SUPPRESS, False
    argv = list(getattr(args, "argv", ["train"]))
    return vars(parser.parse_known_args(argv[argv.index("train") + 1 :] if "train" in argv else argv)[0])


def resumed_run(args: argparse.Namespace, given: dict, device: str):
    """(data folder, model settings, training settings, split parameters, teachers) of the run whose
    last.pt `args.resume` names; refuses in one sentence options that contradict it."""
    from dataclasses import asdict, replace

    from speechcmd.model.checkpoint import METADATA_FIELDS, CheckpointError, read_checkpoint, split_record_problem
    from speechcmd.model.config import ModelConfig
    from speechcmd.train.config import TrainConfig
    from speechcmd.train.data import resolve_labels

    path = Path(args.resume)
    try:
        data = read_checkpoint(path)
        model_config = ModelConfig.from_dict(data["config"])
    except CheckpointError as error:
        raise UserError(str(error)) from None
    except (TypeError, ValueError) as error:
        raise UserError(f"{path}: its settings are unusable ({error}); the model file is damaged.") from None
    metadata, state = data.get("metadata", {}), data.get("training")
    if not isinstance(state, dict):
        raise UserError(f"{path}: this model file has no training state; resume from a run's last.pt.")
    split, trained_on = metadata.get("split_parameters"), metadata.get("trained_on")
    if not isinstance(split, dict) or not isinstance(trained_on, str):
        raise UserError(f"{path}: does not record the data it was trained on (saved by an older speechcmd); start a new run.")
    if problem := split_record_problem(split):
        raise UserError(f"{path}: its record of the data split is damaged ({problem}); start a new run.")
    if not METADATA_FIELDS["teachers"](metadata.get("teachers", [])):
        raise UserError(f"{path}: its list of teacher models is damaged; start a new run.")
    try:
        training = TrainConfig.from_dict(state.get("train_config", metadata.get("train_config")))
    except (TypeError, ValueError) as error:
        raise UserError(f"{path}: its training settings are unusable ({error}); the model file is damaged.") from None
    stored = {
        "model": asdict(model_config), "features": asdict(model_config.features), "training": asdict(training),
        "augment": asdict(training.augment), "split": split, "metadata": {"teachers": metadata.get("teachers", [])},
    }
    conflicts = []
    if "room" in given and given["room"] != (stored["augment"].get("snr_db_min") is not None):
        conflicts.append(f"--room (the run trained {'in' if not given['room'] else 'without'} a room)")
    for option, value in given.items():
        if option not in RUN_SETTINGS:
            continue
        place, name = RUN_SETTINGS[option]
        theirs = stored[place].get(name)
        if option == "labels":
            value = resolve_labels(value, theirs if isinstance(theirs, list) else [])
        if value != theirs:
            flag = "--" + option.replace("_", "-")
            conflicts.append(f"{flag} {value if not isinstance(value, list) else ','.join(map(str, value))} (the run has "
                             f"{theirs if not isinstance(theirs, list) else ','.join(map(str, theirs))})")
    if conflicts:
        raise UserError(
            f"{path}: a resumed run keeps its own settings, and {'; '.join(conflicts)} "
            f"contradict{'s' if len(conflicts) == 1 else ''} them; drop {'it' if len(conflicts) == 1 else 'them'} or start a new run."
        )
    try:
        training = replace(
            training, device=device, epochs=given.get("epochs", training.epochs),
            patience=given.get("patience", training.patience), amp=not given.get("no_amp", not training.amp),
        )
    except ValueError as error:
        raise UserError(option_sentence(error)) from None
    root = Path(given["data"]) if "data" in given else Path(trained_on)
    return root, model_config, training, split, list(stored["metadata"]["teachers"] or [])


def dataset_warnings(dataset, noise_probability: float) -> list[str]:
    """What a user would not notice until the model disappoints: labels without a single training
    clip, and noise augmentation turned off for want of noise recordings."""
    from speechcmd.train.data import BACKGROUND_NOISE

    warnings = []
    counts = dataset.counts()["train"]
    empty = [label for label in dataset.labels if not counts.get(label)]
    if empty:
        warnings.append(
            f"{len(empty)} of the {len(dataset.labels)} labels have no training clips in {dataset.root} "
            f"({', '.join(empty)}); the model cannot learn them: pass --labels with the words you have."
        )
    if noise_probability > 0 and not dataset.noise_files:
        warnings.append(
            f"{dataset.root} has no {BACKGROUND_NOISE}/ folder of noise recordings, so training goes without "
            "noise augmentation (and silence examples are digital silence)."
        )
    return warnings


def run_train(args: argparse.Namespace) -> int:
    import os
    import time

    import torch

    from speechcmd.app.cli_common import folder_problem
    from speechcmd.model.bundled import model_path
    from speechcmd.model.checkpoint import CheckpointError, load_model
    from speechcmd.model.network import SpeechCommandsModel
    from speechcmd.train.data import DatasetError, build_dataset, describe
    from speechcmd.train.download import default_cache_dir
    from speechcmd.train.locks import FolderBusy, folder_lock
    from speechcmd.train.loop import Trainer, TrainingError
    from speechcmd.train.metrics import format_report

    if not (args.data or args.download or args.resume):
        raise UserError("give the data with --data DIR or --download VERSION, or continue a run with --resume RUN/last.pt.")
    device = resolve_device(args.device)
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    # The run and cache folders are checked before minutes of reading data, and made only later.
    cache_named = f"--cache-dir {cache_dir}" if args.cache_dir else (
        f"SPEECHCMD_CACHE={cache_dir}" if os.environ.get("SPEECHCMD_CACHE") else f"the cache folder {cache_dir}")
    for named, folder in ((f"--out {args.out}", args.out), (cache_named, cache_dir)):
        if folder and (problem := folder_problem(folder)):
            raise UserError(f"{named}: {problem}; give a folder you may write to.")
    if args.download:
        from speechcmd.train.download import DownloadError, download_speech_commands

        try:
            root = download_speech_commands(args.download, cache_dir=cache_dir / "datasets", progress=not args.quiet)
        except DownloadError as error:
            raise UserError(str(error)) from None
    else:
        root = Path(args.data) if args.data else None
    try:
        if args.resume:
            given = given_options(args)
            if args.download:
                given["data"] = str(root)
            root, model_config, config, split, teacher_paths = resumed_run(args, given, device)
            dataset = build_dataset(root, **split)
        else:
            dataset, config, model_config = configs_from_args(args, root, device)
            teacher_paths = list(args.teacher)
    except DatasetError as error:
        raise UserError(option_sentence(error)) from None
    except ValueError as error:
        raise UserError(option_sentence(error)) from None
    except PermissionError as error:
        raise UserError(f"{error.filename}: permission denied; check who may read the dataset folder.") from None
    for warning in dataset_warnings(dataset, args.noise_probability if not args.resume else config.augment.noise_probability):
        print(f"warning: {shown(warning)}", file=sys.stderr)

    if args.out:
        run_dir = Path(args.out)
    else:
        run_dir = Path(args.resume).parent if args.resume else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    command = shlex.join(["speechcmd", *getattr(args, "argv", ["train"])])
    try:
        # Teachers before the run folder: one that cannot be loaded leaves no empty run behind.
        teachers = [load_model(model_path(path)) for path in teacher_paths]  # a file or a bundled model's name
        with folder_lock(run_dir, "training"):
            finished = [name for name in ("best.pt", "last.pt") if (run_dir / name).exists()]
            continuing = args.resume and Path(args.resume).parent.resolve() == run_dir.resolve()
            if finished and not continuing:
                if not args.overwrite:
                    raise UserError(
                        f"{run_dir}: already holds a run ({' and '.join(finished)}); continue it with --resume "
                        f"{run_dir / 'last.pt'}, replace it with --overwrite, or choose another --out."
                    )
                for name in ("best.pt", "last.pt", "interrupted.pt", "metrics.jsonl", "test_report.json",
                             "validation_report.json", "learning_curves.png", "confusion.png"):
                    (run_dir / name).unlink(missing_ok=True)
            torch.manual_seed(config.seed)
            model = SpeechCommandsModel(model_config, dataset.labels)
            print(shown(f"data: {root} ({dataset.split_rule}) {describe(dataset)}"), file=sys.stderr)
            trainer = Trainer(
                model, dataset, config, run_dir, cache_dir / "clips", progress=not args.quiet,
                metadata={"command": command, "teachers": teacher_paths}, teachers=teachers,
            )
            tuned = f" ({sum(p.numel() for p in trainer.tuned):,} of them in the embedding)" if trainer.tuned else ""
            print(f"model: {model_config.cell}, {sum(p.numel() for p in model.parameters()):,} parameters trained{tuned}; run folder: {shown(run_dir)}", file=sys.stderr)
            if args.resume:
                trainer.resume(args.resume)
            result = trainer.fit()
    except FolderBusy as error:
        raise UserError(f"{error}; wait for that run to end or choose another --out.") from None
    except (TrainingError, DatasetError, CheckpointError) as error:
        raise UserError(str(error)) from None
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise
    except OSError as error:  # the run folder could not be made or written (/proc, a full or read-only disk)
        raise UserError(f"{error.filename or run_dir}: {error.strerror or error}; give --out a folder you may write to.") from None
    if result["split"] is None:
        print(f"\nno validation or test speakers, so the model was not tested (best model: epoch {trainer.best_epoch}).")
    else:
        print(f"\n{result['split']} split, best model (epoch {trainer.best_epoch}):\n{format_report(result)}")
    print(f"\nsaved {shown(run_dir / 'best.pt')} (and last.pt, metrics.jsonl, learning_curves.png, confusion.png)")
    return 0


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    add_model_argument(p)
    p.add_argument("--data", required=True, metavar="DIR", help="folder with one sub-folder of clips per word (e.g. the canonical test set)")
    p.add_argument("--split", choices=["all", "validation", "test"], default="all",
                   help="only these speakers of the model's own split, held out when it was trained: test for a fair figure (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    add_device_argument(p)
    stream = p.add_argument_group("long recordings (--streaming)")
    stream.add_argument("--streaming", action="store_true", help="lay the clips at random times over a background and score what `classify` detects in it: found, wrong, missed, false alarms per hour")
    stream.add_argument("--minutes", type=float, default=10.0, help="length of the recording (default: %(default)s)")
    stream.add_argument("--background", metavar="PATH", help="noise recording(s) under the words, a file or folder (default: a quiet room tone)")
    stream.add_argument("--talk", metavar="PATH", help="people talking as the background: recordings of continuous speech, a file per "
                        "talker or a folder of them, two talkers at a time, each voice changing talker every 5 to 15 s (10 dB under the words unless --snr)")
    stream.add_argument("--snr", type=float, help="background this many dB under the words' median level (default: as recorded)")
    stream.add_argument("--seed", type=int, default=0, help="word order, times and background offset (default: %(default)s)")


def run_streaming(args: argparse.Namespace, model, device: str) -> int:
    import numpy as np

    from speechcmd.model.audio import AudioError, find_audio_files
    from speechcmd.model.detection import DetectionPolicy
    from speechcmd.model.inference import Classifier
    from speechcmd.train.data import DatasetError, load_noise
    from speechcmd.train.streaming_eval import evaluate_stream, load_words

    if not 0 < args.minutes <= MAX_STREAM_MINUTES:
        raise UserError(f"--minutes must be above 0 and at most {MAX_STREAM_MINUTES} (a day), not {args.minutes:g}.")
    if args.snr is not None and not -30 <= args.snr <= 60:
        raise UserError(f"--snr must be a number of dB between -30 and 60, not {args.snr:g}.")
    if args.background and args.talk:
        raise UserError("give --background (noise) or --talk (people talking), not both.")
    if args.seed < 0:  # numpy's generators take no negative seed
        raise UserError(f"--seed must be a whole number, 0 or more, not {args.seed}.")
    split_parameters = check_split(args, model)
    snr = 10.0 if args.talk and args.snr is None else args.snr
    try:
        words = load_words(Path(args.data), model.labels, split_parameters, args.split)
        background = None
        option, path = ("--background", args.background) if args.background else ("--talk", args.talk)
        files = find_audio_files([path]) if path else []
        if path and not files:
            raise UserError(f"{path}: no audio files; give {option} a recording or a folder of them.")
        if args.background:
            background = load_noise(files)
        elif args.talk:
            from speechcmd.train.noise import conversation

            # Ten minutes of talk at most, looped like any background: a day of it would not fit in memory.
            seconds = min(args.minutes * 60, 600.0)
            talkers = load_noise(files, model.config.features.sample_rate, whole=False)  # bounded as any background
            background = conversation(talkers, int(seconds * model.config.features.sample_rate), np.random.default_rng(args.seed + 1))
    except (DatasetError, AudioError) as error:
        raise UserError(str(error)) from None
    if not words:
        raise UserError(f"{args.data}: no spoken clips with a label of the model in the {args.split} speakers.")
    classifier = Classifier(model, device=device, policy=DetectionPolicy.for_model(model))
    result = evaluate_stream(classifier, words, args.minutes * 60, args.seed, background, snr)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['seconds'] / 60:.1f} minutes, {result['commands']} commands: found {result['found_rate']:.1%}, "
              f"wrong label {result['wrong_rate']:.1%}, missed {result['missed_rate']:.1%}; false alarms "
              f"{result['false_alarms_per_hour']:.1f} per hour ({result['false_alarms_background']} on background, "
              f"{result['false_alarms_words']} on other words, {result['repeats']} repeated)\n"
              f"detection policy: {describe_policy(classifier.policy)}")
    return 0


MAX_STREAM_MINUTES = 1440


def check_split(args: argparse.Namespace, model) -> dict | None:
    """The model's split parameters, when `--split` can be honoured for it; else one sentence."""
    split_parameters = model.metadata.get("split_parameters")
    if args.split != "all" and not isinstance(split_parameters, dict):
        raise UserError(f"{args.model or 'the model'}: its metadata does not say how its speakers were split; use --split all.")
    if args.split == "validation" and split_parameters.get("validation_fraction") == 0:
        raise UserError(f"{args.model or 'the bundled model'}: has no validation speakers (it was refit on them); use --split test.")
    return split_parameters


def describe_policy(policy) -> str:
    """A detection policy in words, as `evaluate` prints it."""
    return (f"a word when its score averaged over {policy.average_seconds:g} s (at least {policy.minimum_windows} windows, "
            f"one every {policy.hop_seconds:g} s) reaches {policy.threshold:g}; then none for {policy.suppression_seconds:g} s")


def run_evaluate(args: argparse.Namespace) -> int:
    from speechcmd.train.data import DatasetError
    from speechcmd.train.evaluate import evaluate_folder
    from speechcmd.train.metrics import format_report

    device = resolve_device(args.device)
    model = load_model_or_fail(args.model, device)
    if args.streaming:
        return run_streaming(args, model, device)
    check_split(args, model)
    try:
        result, failures = evaluate_folder(model, Path(args.data), device, args.split)
    except DatasetError as error:
        raise UserError(str(error)) from None
    except PermissionError as error:
        raise UserError(f"{error.filename}: permission denied; check who may read the dataset folder.") from None
    for failure in failures:
        error = failure["error"] if failure["error"].startswith(failure["path"]) else f"{failure['path']}: {failure['error']}"
        print(f"skipped {shown(error)}", file=sys.stderr)
    for warning in result.get("warnings", []):
        print(f"warning: {shown(warning['path'])}: {shown(warning['warning'])}", file=sys.stderr)
    heard = result.get("trained_speakers")
    if heard:
        print(f"warning: {heard['clips']} of these {heard['of']} spoken clips are of {heard['speakers']} speakers the model was "
              f"trained on, so this accuracy overstates what a new speaker gets; add --split test for its held-out speakers.", file=sys.stderr)
    print(json.dumps(result) if args.json else format_report(result))
    return 1 if failures else 0
