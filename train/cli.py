"""`speechcmd train` and `speechcmd evaluate`: argument parsing and wiring; the work lives in
train.data, train.loop and model.inference. Nothing heavy is imported at module level."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from app.cli import add_device_argument

    data = p.add_argument_group("data")
    source = data.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="DIR", help="folder with one sub-folder of recordings per word")
    source.add_argument("--download", choices=["v0.01", "v0.02"], help="download this Speech Commands release")
    data.add_argument("--cache-dir", metavar="DIR", help="downloads and decoded-clip caches (default: $SPEECHCMD_CACHE or ~/.cache/speechcmd)")
    data.add_argument("--labels", default="12", help="12 (10 commands + silence + unknown), 35 (every word) or a comma list (default: 12)")
    data.add_argument("--validation-fraction", type=float, default=0.1, help="share of speakers for validation when the data has no list files (default: 0.1)")
    data.add_argument("--test-fraction", type=float, default=0.1, help="share of speakers for testing when the data has no list files (default: 0.1)")
    data.add_argument("--split-salt", default="speechcmd", help="salt of the speaker hash that assigns splits (default: speechcmd)")

    net = p.add_argument_group("model")
    net.add_argument("--cell", choices=["lstm", "peephole", "gru"], default="lstm", help="recurrent cell (default: lstm)")
    net.add_argument("--hidden", type=int, default=128, help="units per layer (default: 128)")
    net.add_argument("--layers", type=int, default=2, help="recurrent layers (default: 2)")
    net.add_argument("--dropout", type=float, default=0.1, help="dropout between layers and before the head (default: 0.1)")
    net.add_argument("--pooling", choices=["last", "mean"], default="last", help="summarize the frames by the last step or their mean (default: last)")
    net.add_argument("--n-mfcc", type=int, default=40, help="cepstral coefficients per frame (default: 40)")
    net.add_argument("--n-mels", type=int, default=40, help="mel bands (default: 40)")
    net.add_argument("--frame-ms", type=float, default=30.0, help="MFCC analysis frame (default: 30 ms)")
    net.add_argument("--hop-ms", type=float, default=10.0, help="MFCC frame step, one recurrent time step (default: 10 ms)")
    net.add_argument("--cmn", action="store_true", help="subtract each window's mean from the coefficients (cepstral mean normalization)")

    opt = p.add_argument_group("optimization")
    opt.add_argument("--epochs", type=int, default=60, help="(default: 60)")
    opt.add_argument("--batch-size", type=int, default=64, help="(default: 64)")
    opt.add_argument("--optimizer", choices=["adam", "adamw", "rmsprop"], default="adamw", help="(default: adamw)")
    opt.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: 3e-3)")
    opt.add_argument("--weight-decay", type=float, default=1e-2, help="(default: 1e-2)")
    opt.add_argument("--schedule", choices=["cosine", "step", "constant"], default="cosine", help="after warm-up (default: cosine)")
    opt.add_argument("--warmup-epochs", type=float, default=2.0, help="linear warm-up length (default: 2)")
    opt.add_argument("--clip-grad", type=float, default=5.0, help="gradient norm clipping, 0 = off (default: 5.0)")
    opt.add_argument("--label-smoothing", type=float, default=0.1, help="(default: 0.1)")
    opt.add_argument("--patience", type=int, default=0, help="early stop after this many epochs without a better validation accuracy, 0 = off")
    opt.add_argument("--teacher", action="append", default=[], metavar="PATH", help="distill from this trained model (repeat for an ensemble)")
    opt.add_argument("--distill-weight", type=float, default=0.5, help="share of the loss that follows the teachers (default: 0.5)")
    opt.add_argument("--temperature", type=float, default=2.0, help="distillation temperature (default: 2)")
    opt.add_argument("--seed", type=int, default=0, help="seed for initialization, shuffling and augmentation (default: 0)")
    add_device_argument(opt)
    opt.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")

    aug = p.add_argument_group("augmentation")
    aug.add_argument("--time-shift-ms", type=float, default=100.0, help="random shift in +-ms, 0 = off (default: 100)")
    aug.add_argument("--noise-probability", type=float, default=0.8, help="share of clips mixed with background noise, 0 = off (default: 0.8)")
    aug.add_argument("--noise-volume", type=float, default=0.1, help="largest background-noise gain (default: 0.1)")
    aug.add_argument("--time-masks", type=int, default=2, help="SpecAugment time masks, 0 = off (default: 2)")
    aug.add_argument("--freq-masks", type=int, default=2, help="SpecAugment frequency masks, 0 = off (default: 2)")
    aug.add_argument("--speed", type=float, default=0.0, help="speed perturbation range, e.g. 0.1 for +-10%%, 0 = off")
    aug.add_argument("--volume", type=float, default=0.0, help="volume perturbation range, e.g. 0.3 for +-30%%, 0 = off")

    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", help="run folder for checkpoints, logs and plots (default: runs/<date-time>)")
    out.add_argument("--resume", metavar="PATH", help="continue the run whose last.pt this is (same options)")
    out.add_argument("--quiet", action="store_true", help="no progress bars")


def configs_from_args(args: argparse.Namespace, root: Path, device: str):
    """The dataset, training settings and model settings that `speechcmd train` options describe."""
    from model.features import FeatureConfig
    from model.network import ModelConfig
    from train.augment import AugmentConfig
    from train.data import build_dataset
    from train.loop import TrainConfig

    dataset = build_dataset(root, args.labels, args.validation_fraction, args.test_fraction, args.split_salt, seed=args.seed)
    augment = AugmentConfig(
        time_shift_ms=args.time_shift_ms,
        noise_probability=args.noise_probability if dataset.noise_files else 0.0,
        noise_max_volume=args.noise_volume,
        time_masks=args.time_masks,
        freq_masks=args.freq_masks,
        speed_range=args.speed,
        volume_range=args.volume,
    )
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, learning_rate=args.lr,
        weight_decay=args.weight_decay, schedule=args.schedule, warmup_epochs=args.warmup_epochs,
        clip_grad_norm=args.clip_grad, label_smoothing=args.label_smoothing, patience=args.patience,
        distillation_weight=args.distill_weight, temperature=args.temperature,
        seed=args.seed, device=device, amp=not args.no_amp, augment=augment,
    )
    model_config = ModelConfig(
        cell=args.cell, hidden_size=args.hidden, num_layers=args.layers, dropout=args.dropout, pooling=args.pooling,
        features=FeatureConfig(
            n_mfcc=args.n_mfcc, n_mels=args.n_mels, frame_ms=args.frame_ms, hop_ms=args.hop_ms,
            window_mean_normalization=args.cmn,
        ),
    )
    return dataset, config, model_config


def run_train(args: argparse.Namespace) -> int:
    import time

    import torch

    from app.cli import UserError, resolve_device
    from model.checkpoint import CheckpointError, load_model
    from model.network import SpeechCommandsModel
    from train.data import DatasetError, describe
    from train.download import default_cache_dir
    from train.loop import Trainer, TrainingError
    from train.metrics import format_report

    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    if args.download:
        from train.download import DownloadError, download_speech_commands

        try:
            root = download_speech_commands(args.download, cache_dir=cache_dir / "datasets", progress=not args.quiet)
        except DownloadError as error:
            raise UserError(str(error)) from None
    else:
        root = Path(args.data)
    try:
        dataset, config, model_config = configs_from_args(args, root, resolve_device(args.device))
    except (DatasetError, ValueError) as error:
        raise UserError(str(error)) from None

    torch.manual_seed(args.seed)
    model = SpeechCommandsModel(model_config, dataset.labels)
    if args.out:
        run_dir = Path(args.out)
    else:
        run_dir = Path(args.resume).parent if args.resume else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    print(f"data: {root} ({dataset.split_rule}) {describe(dataset)}", file=sys.stderr)
    print(f"model: {model_config.cell}, {sum(p.numel() for p in model.parameters()):,} parameters; run folder: {run_dir}", file=sys.stderr)
    command = shlex.join(["speechcmd", *getattr(args, "argv", ["train"])])
    try:
        teachers = [load_model(path) for path in args.teacher]
        trainer = Trainer(
            model, dataset, config, run_dir, cache_dir / "clips", progress=not args.quiet,
            metadata={"command": command, "teachers": list(args.teacher)}, teachers=teachers,
        )
        if args.resume:
            trainer.resume(args.resume)
        result = trainer.fit()
    except (TrainingError, DatasetError, CheckpointError) as error:
        raise UserError(str(error)) from None
    except KeyboardInterrupt:
        return 130
    print(f"\n{result['split']} split, best model (epoch {trainer.best_epoch}):\n{format_report(result)}")
    print(f"\nsaved {run_dir / 'best.pt'} (and last.pt, metrics.jsonl, learning_curves.png, confusion.png)")
    return 0


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    from app.cli import add_device_argument, add_model_argument

    add_model_argument(p)
    p.add_argument("--data", required=True, metavar="DIR", help="folder with one sub-folder of clips per word (e.g. the canonical test set)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    add_device_argument(p)


def run_evaluate(args: argparse.Namespace) -> int:
    from app.cli import UserError, load_model_or_fail, resolve_device
    from train.data import DatasetError
    from train.evaluate import evaluate_folder
    from train.metrics import format_report

    device = resolve_device(args.device)
    model = load_model_or_fail(args.model, device)
    try:
        result, failures = evaluate_folder(model, Path(args.data), device)
    except DatasetError as error:
        raise UserError(str(error)) from None
    for failure in failures:
        print(f"skipped {failure['path']}: {failure['error']}", file=sys.stderr)
    print(json.dumps(result) if args.json else format_report(result))
    return 1 if failures else 0
