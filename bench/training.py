"""Training speed on the CPU: clips per second and epoch time, with and without the clip cache.

The recipe is given as `speechcmd train` options (parsed by the same parser, so any recipe can be
timed). By default it is the command recorded in the bundled model (its `metadata["command"]`),
else LSTM 128 x 2, batch 64, default augmentation; on the real clips in ../shared/data, or on a
generated folder-per-label dataset where those are absent.

"cached" is `Trainer` as it trains: each batch read from the decoded int16 `ClipCache`.
"uncached" is the baseline the cache replaced: each batch's clips decoded from disk with
`load_audio` at every step (written here, not in train/). Only `steps` steps are timed (after
warm-up steps), the two variants alternating over the same batches; the epoch time is
extrapolated from them.
"""

from __future__ import annotations

import argparse
import shlex
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from bench.common import REAL_DATA

DEFAULT_RECIPE = f"--data {REAL_DATA} --validation-fraction 0.15 --test-fraction 0.15 --hidden 128 --layers 2 --batch-size 64"


def generate_dataset(root: Path, words=("yes", "no", "up", "down"), speakers: int = 12, clips_per_speaker: int = 6) -> Path:
    """A folder-per-label dataset of 1 s tones (one pitch range per word), named like Speech Commands."""
    rng = np.random.default_rng(0)
    t = np.arange(16_000) / 16_000
    for w, word in enumerate(words):
        for s in range(speakers):
            for n in range(clips_per_speaker):
                frequency = 200 * (w + 1) + rng.uniform(-30, 30)
                clip = 0.3 * np.sin(2 * np.pi * frequency * t) + rng.normal(0, 0.02, t.size)
                path = root / word / f"spk{s:03d}_nohash_{n}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(path), clip.astype(np.float32), 16_000, subtype="PCM_16")
    return root


def bundled_recipe() -> str | None:
    """The options the bundled model was trained with, less where its run was written."""
    from speechcmd.model.checkpoint import bundled_model_path, read_checkpoint

    if not bundled_model_path().is_file():
        return None
    words = shlex.split(read_checkpoint(bundled_model_path()).get("metadata", {}).get("command", ""))
    if words[:2] != ["speechcmd", "train"]:
        return None
    options = words[2:]
    for flag in ("--out", "--resume", "--cache-dir"):
        while flag in options:
            at = options.index(flag)
            del options[at : at + 2]
    return shlex.join(options)


def parse_recipe(recipe: str) -> argparse.Namespace:
    """Parse `speechcmd train` options with the command's own parser."""
    from speechcmd.app.cli_train import add_train_arguments

    parser = argparse.ArgumentParser(prog="recipe")
    add_train_arguments(parser)
    return parser.parse_args(shlex.split(recipe))


def uncached_trainer_class():
    from speechcmd.model.audio import load_audio
    from speechcmd.train.loop import Trainer

    class DecodingTrainer(Trainer):
        """Reads every batch's clips from disk with `load_audio`, as training did without a cache."""

        def waveforms(self, rows: np.ndarray) -> torch.Tensor:
            window = self.cache.samples.shape[1]
            batch = np.zeros((len(rows), window), dtype=np.float32)
            for k, row in enumerate(rows):
                audio = load_audio(self.cache.clips[row].path, self.sample_rate)[:window]
                batch[k, : len(audio)] = audio
            return torch.from_numpy(batch).to(self.device)

    return DecodingTrainer


def _steps(trainer, epoch: int, steps: int) -> tuple[float, float]:
    """Wall and CPU seconds of `steps` training steps (the first steps of `epoch`'s order)."""
    real_steps = trainer.steps_per_epoch
    trainer.steps_per_epoch = steps
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.train_epoch(epoch)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    trainer.steps_per_epoch = real_steps
    return wall, cpu


def _batch_read_ms(trainer) -> float:
    rows = trainer.rows["train"][: trainer.config.batch_size]
    start = time.perf_counter()
    for _ in range(5):
        trainer.waveforms(rows)
    return round((time.perf_counter() - start) / 5 * 1e3, 2)


def _time_interleaved(trainers: dict, steps: int, warmup_steps: int, rounds: int = 5) -> dict:
    """Alternate the variants in `rounds` slices of the same batches, so that a change in the
    machine's load during the run hits both alike."""
    for trainer in trainers.values():
        _steps(trainer, 0, warmup_steps)
    totals = {name: [0.0, 0.0] for name in trainers}
    per_round = max(1, steps // rounds)
    for round_ in range(rounds):
        for name, trainer in trainers.items():
            wall, cpu = _steps(trainer, 1 + round_, per_round)
            totals[name][0] += wall
            totals[name][1] += cpu
    results = {}
    for name, trainer in trainers.items():
        wall, cpu = totals[name]
        timed = per_round * rounds
        results[name] = {
            "steps_timed": timed,
            "seconds_per_step": round(wall / timed, 4),
            "cpu_seconds_per_step": round(cpu / timed, 4),
            "clips_per_second": round(timed * trainer.config.batch_size / wall, 1),
            "batch_read_ms": _batch_read_ms(trainer),
            "epoch_seconds_extrapolated": round(wall / timed * trainer.steps_per_epoch, 1),
        }
    return results


def run(options: dict) -> dict:
    from speechcmd.model.network import SpeechCommandsModel
    from speechcmd.app.cli_train import configs_from_args
    from speechcmd.train.download import default_cache_dir
    from speechcmd.train.loop import Trainer

    steps = options.get("steps", 30)
    warmup_steps = options.get("warmup_steps", 3)
    with tempfile.TemporaryDirectory(prefix="speechcmd-bench-") as temporary:
        temporary = Path(temporary)
        recipe, source = options.get("recipe"), "given"
        if not recipe:
            recipe, source = bundled_recipe(), "the bundled model's recorded command"
        if not recipe:
            recipe, source = DEFAULT_RECIPE, "default (bundled model absent)"
        args = parse_recipe(recipe)
        if not (Path(args.data) / "yes").is_dir() and not options.get("recipe"):
            args.data = str(generate_dataset(temporary / "data"))  # the real clips are absent here
            source += ", on generated clips"
        dataset, config, model_config = configs_from_args(args, Path(args.data), "cpu")
        cache_dir = Path(options.get("cache_dir") or default_cache_dir() / "clips")
        trainers = {}
        for name, trainer_class in (("cached", Trainer), ("uncached", uncached_trainer_class())):
            torch.manual_seed(config.seed)
            model = SpeechCommandsModel(model_config, dataset.labels)
            trainers[name] = trainer_class(model, dataset, config, temporary / name, cache_dir, progress=False)
        results = _time_interleaved(trainers, steps, warmup_steps)
        results["cached"]["cache_file"] = str(trainers["cached"].cache.path)
        steps_per_epoch = trainers["cached"].steps_per_epoch
    return {
        "recipe": recipe,
        "recipe_source": source,
        "model_config": model_config.to_dict(),
        "train_config": {"batch_size": config.batch_size, "optimizer": config.optimizer, "augment": vars(config.augment)},
        "train_clips": len(dataset.splits["train"]),
        "steps_per_epoch": steps_per_epoch,
        "threads": torch.get_num_threads(),
        "results": results,
        "cache_speedup": round(results["cached"]["clips_per_second"] / results["uncached"]["clips_per_second"], 2),
    }
