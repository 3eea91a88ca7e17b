"""`speechcmd adapt`: teach a model new words from a folder of recordings (the Teach panel's work,
for scripts). The work lives in speechcmd.train.adapt; nothing heavy is imported at module level."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from contextlib import nullcontext
from pathlib import Path

from speechcmd.app.cli_common import UserError, load_model_or_fail, shown


class AdaptDefaultsFormatter(argparse.HelpFormatter):
    """Adds "(default: ...)" to the tuning options from AdaptConfig itself, and only when help is
    shown: AdaptConfig lives beside torch, which every other command line must not wait for."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = super()._get_help_string(action) or ""
        if action.dest in TUNING_OPTIONS:
            from speechcmd.train.adapt import AdaptConfig

            text += f" (default: {getattr(AdaptConfig(), action.dest)})"
        return text


TUNING_OPTIONS = ("steps", "copies", "folds", "seed")


def add_adapt_arguments(p: argparse.ArgumentParser) -> None:
    """Tuning options default to None, meaning AdaptConfig's value (not imported here: it loads torch)."""
    p.formatter_class = AdaptDefaultsFormatter
    p.add_argument("--base", metavar="MODEL", help="model to start from: a bundled model's name (speechcmd-lstm, the default, or speechcmd-mfcc-lstm) or a file")
    p.add_argument("--data", required=True, metavar="DIR", help="one sub-folder of recordings per word; _silence_/ for background, _unknown_/ for other speech")
    p.add_argument("--out", required=True, metavar="NEW.pt", help="where to write the new model")
    replay = p.add_mutually_exclusive_group()
    replay.add_argument("--replay", metavar="DIR", help="the base model's training data (folder per label): clips of its words keep them "
                        "recognized (default: the features of such clips shipped with the bundled model, for it and models taught "
                        "from it; else $SPEECHCMD_DATA, else the --data folder the base model was trained on, when here)")
    replay.add_argument("--no-replay", action="store_true", help="learn from the takes alone (expect many more false accepts)")
    p.add_argument("--steps", type=int, help="optimizer steps per round")
    p.add_argument("--copies", type=int, help="augmented copies of each take")
    p.add_argument("--folds", type=int, help="leave-some-out rounds for the report")
    p.add_argument("--last-layer", action="store_true", default=None, help="also fine-tune the top recurrent layer (slower)")
    p.add_argument("--seed", type=int, help="seed for augmentation, folds and initialization")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")


def run_adapt(args: argparse.Namespace) -> int:
    """Every option and --out is checked before the base model and the takes are read; --out's
    folder is locked from then on, as `train` locks its run folder, so that neither replaces the
    other's best.pt."""
    from speechcmd.model.checkpoint import save_target_problem
    from speechcmd.train.adapt import WRITING, AdaptConfig, busy_folder_sentence
    from speechcmd.train.locks import FolderBusy, folder_lock

    chosen = {"steps": args.steps, "copies": args.copies, "folds": args.folds, "last_layer": args.last_layer, "seed": args.seed}
    try:
        config = AdaptConfig(**{name: value for name, value in chosen.items() if value is not None})
    except ValueError as error:
        text = str(error)
        raise UserError(f"--{text}" if text.split(" ")[0] in TUNING_OPTIONS else text) from None
    try:
        is_folder = Path(args.data).is_dir()
    except OSError as error:  # a name too long to look up, a folder above it that may not be searched
        raise UserError(f"{args.data}: cannot be looked up ({error.strerror}); pass a folder with one sub-folder of recordings per word.") from None
    if not is_folder:
        raise UserError(f"{args.data}: no such folder; pass a folder with one sub-folder of recordings per word.")
    out = Path(args.out)
    if problem := save_target_problem(out):
        raise UserError(f"--out {out}: {problem}.")
    try:
        with folder_lock(out.parent, WRITING) if out.parent.is_dir() else nullcontext():
            return adapt_and_save(args, config)
    except FolderBusy:
        raise UserError(f"--out {out}: {busy_folder_sentence(out.parent)}.") from None


def adapt_and_save(args: argparse.Namespace, config) -> int:
    from speechcmd.model.audio import AudioError
    from speechcmd.model.checkpoint import CheckpointError
    from speechcmd.train.adapt import AdaptError, adapt, check_takes, format_adapt_report, gather_replay, save_adapted
    from speechcmd.train.data import DatasetError
    from speechcmd.train.takes import SUGGESTED_TAKES, load_takes

    base = load_model_or_fail(args.base)
    window = base.config.features.window_samples
    try:
        takes, problems = load_takes(args.data, window)
    except PermissionError as error:
        raise UserError(f"{error.filename or args.data}: permission denied; check who may read the folder of takes.") from None
    for problem in problems:
        print(f"skipped {shown(problem)}", file=sys.stderr)
    if not takes:
        raise UserError(f"{args.data}: no takes in it; give it one sub-folder of recordings per word, {SUGGESTED_TAKES} or more takes of each word to teach.")
    replay, noise, bank = [], None, None
    try:
        new_words = check_takes(base, takes)  # "too few takes" before minutes of reading clips
        if not args.no_replay:
            replay, noise, bank, note = gather_replay(base, new_words, config, args.replay)
            print(shown(note), file=sys.stderr)
    except AdaptError as error:
        raise UserError(str(error)) from None
    except (DatasetError, AudioError) as error:
        raise UserError(f"--replay: {error}") from None
    except PermissionError as error:
        raise UserError(f"--replay {error.filename or args.replay}: permission denied; check who may read the folder.") from None
    try:
        adapted = adapt(base, takes, config, replay=replay, noise=noise, bank=bank)
    except AdaptError as error:
        raise UserError(str(error)) from None
    command = shlex.join(["speechcmd", *getattr(args, "argv", ["adapt"])])
    try:
        path = save_adapted(args.out, base, adapted, command=command, takes_folder=str(Path(args.data).resolve()))
    except OSError as error:
        raise UserError(f"{args.out}: could not write the model ({error.strerror or error}).") from None
    except CheckpointError as error:
        raise UserError(str(error)) from None
    if args.json:
        print(json.dumps({**adapted.report, "out": str(path)}))
    else:
        print("\n".join(map(shown, format_adapt_report(adapted.report).splitlines())))
        path = shown(path)
        print(f"\nsaved {path}; use it with `speechcmd gui --model {path}` or `speechcmd classify --model {path} ...`")
    return 0
