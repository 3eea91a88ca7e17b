"""The training loop: batches from the clip cache, augmentation and MFCCs on the training device.

`Trainer.fit` runs epochs with a warm-up + cosine (or step) learning-rate schedule, gradient
clipping, label smoothing and early stopping on validation accuracy. After every epoch it writes
`last.pt` (everything needed to resume exactly) and, on a new best validation accuracy, `best.pt`
(with `ema_decay`, validation and best.pt see the moving average of the weights, not the last step's).
Each epoch's shuffling, augmentation and dropout draw from generators seeded by (seed, epoch), so
a run resumed from `last.pt` repeats the epochs an uninterrupted run would have.
"""

from __future__ import annotations

import json
import math
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from speechcmd.model.checkpoint import (
    CheckpointError,
    model_from_checkpoint,
    read_checkpoint,
    save_checkpoint,
    stale_temporary_files,
)
from speechcmd.model.detection import NON_COMMANDS
from speechcmd.model.network import SpeechCommandsModel
from speechcmd.train.augment import add_background, spec_augment, vary_speaker, word_fragments
from speechcmd.train.config import TrainConfig
from speechcmd.train.data import SILENCE, SPLITS, UNKNOWN, ClipCache, Dataset, load_noise, speaker_digest
from speechcmd.train.locks import FolderBusy, folder_lock
from speechcmd.train.metrics import plot_confusion, report


class TrainingError(RuntimeError):
    """Training cannot go on; one sentence saying why and what to change."""


def _generator(device: torch.device, seed: int, epoch: int, stream: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch * 101 + stream)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Trainer:
    def __init__(
        self,
        model: SpeechCommandsModel,
        dataset: Dataset,
        config: TrainConfig,
        run_dir: str | Path,
        cache_dir: str | Path,
        progress: bool = True,
        metadata: dict | None = None,
        teachers: list[SpeechCommandsModel] = (),
    ):
        if list(model.labels) != list(dataset.labels):
            raise TrainingError("the model's labels differ from the dataset's; build the model from dataset.labels.")
        self.config = config
        self.device = torch.device(config.device)
        self.model = model.to(self.device)
        if any(list(teacher.labels) != list(dataset.labels) for teacher in teachers):
            raise TrainingError("every teacher model must have the dataset's labels, in the same order.")
        self.teachers = [teacher.to(self.device).eval() for teacher in teachers]
        self.dataset = dataset
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.progress = progress
        self.metadata = metadata or {}
        self.sample_rate = model.config.features.sample_rate
        self.stream_context = model.config.features.stream_context
        self.context = model.config.features.context_samples

        clips = [clip for name in SPLITS for clip, _ in dataset.splits[name]]
        self.cache = ClipCache(clips, Path(cache_dir), model.config.features.window_samples, self.sample_rate, progress)
        offset = 0
        self.rows, self.targets = {}, {}
        for name in SPLITS:
            items = dataset.splits[name]
            self.rows[name] = np.arange(offset, offset + len(items))
            self.targets[name] = torch.tensor([y for _, y in items], dtype=torch.long)
            offset += len(items)
        self.noise = torch.from_numpy(load_noise(dataset.noise_files, self.sample_rate)).to(self.device)
        self.silence = dataset.labels.index(SILENCE) if SILENCE in dataset.labels else -1
        self.unknown = dataset.labels.index(UNKNOWN) if UNKNOWN in dataset.labels else -1
        if config.augment.fragment_probability > 0 and self.unknown < 0:
            raise TrainingError(f"word fragments become {UNKNOWN}, and these labels have none: "
                                f"add {UNKNOWN} to the labels or train without fragments.")
        self.is_command = torch.tensor([label not in NON_COMMANDS for label in dataset.labels], device=self.device)

        self.tuned = []  # the embedding's parameters being tuned (`TrainConfig.tune_embedding`)
        if config.tune_embedding:
            if not hasattr(model.frontend, "unfreeze"):
                raise TrainingError("only the speech embedding front-end can be tuned; train with --front-end speech_embedding or without --tune-embedding.")
            self.tuned = model.frontend.unfreeze(config.tune_embedding)
        self.optimizer = self._make_optimizer()
        # The weights' moving average (`TrainConfig.ema_decay`), one tensor per model parameter.
        self.average = [p.detach().clone() for p in self.model.parameters()] if config.ema_decay else []
        self.steps_per_epoch = math.ceil(len(self.rows["train"]) / config.batch_size)
        self.epoch = 0  # completed epochs
        self.history: list[dict] = []
        self.best_accuracy = -1.0
        self.best_epoch = 0
        self.use_amp = config.amp and self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.resumed_from: Path | None = None

    # ---- set-up -------------------------------------------------------------------------------

    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        # No weight decay on biases (the 1-d parameters), nor on the embedding's pretrained weights.
        tuned = {id(p) for p in self.tuned}
        decay = [p for p in self.model.parameters() if p.ndim > 1 and id(p) not in tuned]
        rest = [p for p in self.model.parameters() if p.ndim <= 1 and id(p) not in tuned]
        groups = [{"params": decay, "weight_decay": c.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        if self.tuned:
            groups.append({"params": self.tuned, "weight_decay": 0.0, "lr_scale": c.tune_lr_scale})
        if c.optimizer == "adam":
            return torch.optim.Adam(groups, lr=c.learning_rate)
        if c.optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=c.learning_rate)
        return torch.optim.RMSprop(groups, lr=c.learning_rate, alpha=0.9, eps=1e-6)

    def learning_rate(self, step: int) -> float:
        """Learning rate at a global step (fractional epochs: step / steps_per_epoch)."""
        c = self.config
        epoch = step / self.steps_per_epoch
        if c.warmup_epochs > 0 and epoch < c.warmup_epochs:
            return c.learning_rate * (epoch + 1 / self.steps_per_epoch) / c.warmup_epochs
        if c.schedule == "cosine":
            span = max(c.epochs - c.warmup_epochs, 1e-9)
            progress = min(1.0, (epoch - c.warmup_epochs) / span)
            return c.learning_rate * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))
        if c.schedule == "step":
            return c.learning_rate * c.step_gamma ** int(epoch // c.step_epochs)
        return c.learning_rate

    def waveforms(self, rows: np.ndarray) -> torch.Tensor:
        """(batch, samples) float32 on the device, from the int16 cache (rows read in order)."""
        order = np.argsort(rows)
        batch = np.empty((len(rows), self.cache.samples.shape[1]), dtype=np.int16)
        batch[order] = self.cache.samples[rows[order]]
        return torch.from_numpy(batch).to(self.device, non_blocking=True).float().div_(32768.0)

    @torch.no_grad()
    def compute_normalization(self, max_clips: int = 4000) -> None:
        """Per-coefficient mean and std of the training MFCCs, stored in the model's front-end."""
        rows = self.rows["train"][:max_clips]
        frontend = self.model.frontend
        total, total_sq, count = 0.0, 0.0, 0
        for start in range(0, len(rows), 256):
            raw = frontend.raw(self.waveforms(rows[start : start + 256])).double()  # (B, T, C)
            total = total + raw.sum(dim=(0, 1))
            total_sq = total_sq + (raw**2).sum(dim=(0, 1))
            count += raw.shape[0] * raw.shape[1]
        mean = total / count
        std = (total_sq / count - mean**2).clamp_min(0).sqrt()
        frontend.set_statistics(mean.float(), std.float())

    # ---- epochs -------------------------------------------------------------------------------

    def train_epoch(self, epoch: int) -> dict:
        c = self.config
        self.model.train()
        torch.manual_seed(c.seed * 1_000_003 + epoch)  # dropout
        order = torch.randperm(len(self.rows["train"]), generator=_generator(torch.device("cpu"), c.seed, epoch, 0))
        augment = _generator(self.device, c.seed, epoch, 1)
        rows_all, targets_all = self.rows["train"], self.targets["train"]
        loss_sum, correct, seen = 0.0, 0, 0
        bar = self._bar(range(self.steps_per_epoch), f"epoch {epoch + 1}/{c.epochs}")
        for step in bar:
            index = order[step * c.batch_size : (step + 1) * c.batch_size].numpy()
            targets = targets_all[index].to(self.device)
            for group in self.optimizer.param_groups:
                group["lr"] = self.learning_rate(epoch * self.steps_per_epoch + step) * group.get("lr_scale", 1.0)
            dry = vary_speaker(self.waveforms(rows_all[index]), c.augment, self.sample_rate, augment)
            words = targets
            dry, targets = word_fragments(dry, targets, self.is_command[targets], self.unknown, c.augment, self.sample_rate, augment)
            fragments = None if c.augment.fragment_noise else targets != words
            if self.stream_context:  # the room is heard around the clip too, as a stream's window hears it
                dry = nn.functional.pad(dry, (self.context, self.context))
            waveform = add_background(dry, targets == self.silence, self.noise, c.augment, self.sample_rate, augment, fragments)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                with torch.autocast(self.device.type, enabled=False):
                    frames = self.model.frontend(waveform, context_included=True) if self.stream_context else self.model.frontend(waveform)
                    features = spec_augment(frames, c.augment, augment)
                logits = self.model.logits_from_features(features)
                loss = F.cross_entropy(logits.float(), targets, label_smoothing=c.label_smoothing)
                if self.teachers:
                    heard = dry if c.distill_clean else waveform
                    if self.stream_context:  # teachers classify the window alone
                        heard = heard[:, self.context : heard.shape[1] - self.context]
                    loss = (1 - c.distillation_weight) * loss + c.distillation_weight * self.distillation_loss(heard, logits)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; nothing was saved "
                    f"from this epoch; lower --lr (now {c.learning_rate}) or --clip-grad."
                )
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            if c.clip_grad_norm > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), c.clip_grad_norm)
            try:
                self.scaler.step(self.optimizer)
            except RuntimeError as error:  # a step beyond float32 (--lr 1e38): the optimizer cannot even apply it
                if "overflow" not in str(error):
                    raise
                raise TrainingError(
                    f"the optimizer's step overflowed at epoch {epoch + 1}, step {step + 1}; nothing was saved "
                    f"from this epoch; lower --lr (now {c.learning_rate:g})."
                ) from None
            self.scaler.update()
            self._update_average(epoch * self.steps_per_epoch + step)
            loss_sum += loss.item() * len(index)
            correct += (logits.argmax(-1) == targets).sum().item()
            seen += len(index)
            if self.progress:
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        return {"train_loss": loss_sum / seen, "train_accuracy": correct / seen}

    @torch.no_grad()
    def _update_average(self, step: int) -> None:
        """Move the average towards the weights; the decay ramps up over the first steps, so that
        the average soon forgets the random initialization (as TensorFlow's ExponentialMovingAverage
        with num_updates does)."""
        if not self.average:
            return
        decay = min(self.config.ema_decay, (1 + step) / (10 + step))
        for average, weight in zip(self.average, self.model.parameters()):
            average.lerp_(weight, 1.0 - decay)

    @contextmanager
    def _averaged(self):
        """The model holds the averaged weights inside the block (nothing changes without an average)."""
        if not self.average:
            yield
            return
        parameters = list(self.model.parameters())
        trained = [p.detach().clone() for p in parameters]
        with torch.no_grad():
            for p, average in zip(parameters, self.average):
                p.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, weight in zip(parameters, trained):
                    p.copy_(weight)

    def distillation_loss(self, waveform: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """KL divergence from the teachers' averaged, softened prediction on the same augmented batch,
        or on its dry clips with `distill_clean` (what an ensemble knows, taught to one model that
        ships alone)."""
        T = self.config.temperature
        with torch.no_grad():
            teacher = torch.stack([t(waveform).float().div(T).softmax(-1) for t in self.teachers]).mean(dim=0)
        student = F.log_softmax(logits.float() / T, dim=-1)
        return F.kl_div(student, teacher, reduction="batchmean") * T * T

    @torch.no_grad()
    def predict(self, split: str, batch_size: int = 256) -> tuple[np.ndarray, float]:
        """Predicted label indices for a split, without augmentation, and the mean loss."""
        self.model.eval()
        rows, targets = self.rows[split], self.targets[split]
        predictions, loss_sum = [], 0.0
        for start in range(0, len(rows), batch_size):
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                logits = self.model(self.waveforms(rows[start : start + batch_size])).float()
            target = targets[start : start + batch_size].to(self.device)
            loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
            predictions.append(logits.argmax(-1).cpu().numpy())
        predictions = np.concatenate(predictions) if predictions else np.zeros(0, np.int64)
        return predictions, loss_sum / max(len(rows), 1)

    def _bar(self, iterable, description: str):
        if not self.progress:
            return iterable
        from tqdm import tqdm

        return tqdm(iterable, desc=description, unit="batch", leave=False, dynamic_ncols=True, file=sys.stderr)

    # ---- checkpoints --------------------------------------------------------------------------

    def _metadata(self, **more) -> dict:
        return {
            **self.metadata,
            "labels": list(self.dataset.labels),
            "trained_on": str(self.dataset.root),
            "split": self.dataset.split_rule,
            "split_parameters": self.dataset.split_parameters,
            "split_counts": self.dataset.counts(),
            "training_speakers": sorted(speaker_digest(speaker) for speaker in self.dataset.speakers("train")),
            "train_config": asdict(self.config),
            "epochs_trained": self.epoch,
            "best_epoch": self.best_epoch,
            "validation_accuracy": round(self.best_accuracy, 4) if self.best_accuracy >= 0 else None,
            **more,
        }

    def _save(self, name: str, metadata: dict, **extra) -> None:
        self._save_model(name, self.model, metadata, **extra)

    def _save_model(self, name: str, model: SpeechCommandsModel, metadata: dict, **extra) -> None:
        """Save into the run folder; a failed save (full disk) leaves the previous file intact."""
        path = self.run_dir / name
        try:
            save_checkpoint(path, model, metadata, **extra)
        except OSError as error:
            raise TrainingError(
                f"{path}: could not save the checkpoint ({error.strerror or error}); free some disk space "
                f"and resume from {self.run_dir / 'last.pt'}, which still holds the last saved epoch."
            ) from None

    def save_last(self) -> None:
        self._save(
            "last.pt",
            self._metadata(),
            training={
                "epoch": self.epoch,
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "history": self.history,
                "best_accuracy": self.best_accuracy,
                "best_epoch": self.best_epoch,
                "train_config": asdict(self.config),
                **({"average": [a.cpu() for a in self.average]} if self.average else {}),
            },
        )

    def resume(self, path: str | Path) -> None:
        """Continue from a `last.pt`: weights, optimizer, epoch counter, history and best score.
        Everything is checked before anything is changed, as loading a model is."""
        path = Path(path)
        data = read_checkpoint(path)
        state = data.get("training")
        if not isinstance(state, dict):
            raise TrainingError(f"{path}: this model file has no training state; resume from a run's last.pt.")
        if data["labels"] != self.dataset.labels:
            raise TrainingError(f"{path}: was trained on other labels ({', '.join(map(str, data['labels']))}); use the same --labels.")
        weights = model_from_checkpoint(data, path)  # refuses NaN weights and sizes that do not match
        if weights.config != self.model.config:
            raise TrainingError(f"{path}: was trained with other model settings than this run's; resume with the run's own settings.")
        self._check_training_state(state, path)
        self.model.load_state_dict(weights.state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch = state["epoch"]
        self.history = list(state["history"])
        self.best_accuracy = float(state["best_accuracy"])
        self.best_epoch = state["best_epoch"]
        for average, saved in zip(self.average, state.get("average", ())):
            average.copy_(saved)
        self.resumed_from = path

    def _check_training_state(self, state: dict, path: Path) -> None:
        """Raise `TrainingError` naming what is wrong in a last.pt's training state."""
        def damaged(what: str) -> TrainingError:
            return TrainingError(f"{path}: its training state is damaged ({what}); resume from another last.pt or start a new run.")

        epoch, best_epoch, best = state.get("epoch"), state.get("best_epoch"), state.get("best_accuracy")
        if type(epoch) is not int or not 0 <= epoch <= 100_000:
            raise damaged(f"epoch is {epoch!r}")
        if type(best_epoch) is not int or not 0 <= best_epoch <= epoch:
            raise damaged(f"best epoch is {best_epoch!r}")
        if not isinstance(best, (int, float)) or isinstance(best, bool) or not -1 <= best <= 1:
            raise damaged(f"best accuracy is {best!r}")
        history = state.get("history")
        if not isinstance(history, list) or len(history) != epoch or not all(isinstance(h, dict) for h in history):
            raise damaged("its history does not list one entry per epoch")
        for number, entry in enumerate(history, 1):  # what the log and the learning curves read
            if entry.get("epoch") != number or not all(_is_number(entry.get(name)) for name in ("train_loss", "train_accuracy")) \
                    or not all(entry.get(name) is None or _is_number(entry.get(name)) for name in ("validation_loss", "validation_accuracy")):
                raise damaged(f"its history's entry for epoch {number} is not one")
        if self.average:
            saved = state.get("average")
            if not isinstance(saved, list) or len(saved) != len(self.average):
                raise damaged("no moving average of the weights, which --ema-decay keeps")
            for value, average in zip(saved, self.average):
                if not isinstance(value, torch.Tensor) or value.shape != average.shape or not value.isfinite().all():
                    raise damaged("its moving average does not fit this model or is not finite")
        scaler = state.get("scaler")
        if not isinstance(scaler, dict) or not all(isinstance(key, str) and _is_number(value) for key, value in scaler.items()):
            raise damaged("no gradient-scaler state")
        optimizer = state.get("optimizer")
        if not isinstance(optimizer, dict) or not isinstance(optimizer.get("state"), dict) or not isinstance(optimizer.get("param_groups"), list):
            raise damaged("no optimizer state")
        sizes = [len(group["params"]) for group in self.optimizer.param_groups]
        if [len(g.get("params", ())) if isinstance(g, dict) else -1 for g in optimizer["param_groups"]] != sizes:
            raise damaged(f"its optimizer is not this run's {self.config.optimizer}")
        for group, ours in zip(optimizer["param_groups"], self.optimizer.param_groups):
            for name, value in group.items():  # the learning rate, betas, weight decay... as this optimizer keeps them
                if name != "params" and name in ours and not isinstance(value, type(ours[name])) and not (_is_number(value) and _is_number(ours[name])):
                    raise damaged(f"optimizer setting {name!r} is {value!r}")
                if isinstance(value, float) and not math.isfinite(value):
                    raise damaged(f"optimizer setting {name!r} is {value!r}")
        parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
        for index, values in optimizer["state"].items():
            if type(index) is not int or not 0 <= index < len(parameters) or not isinstance(values, dict):
                raise damaged("its optimizer state names parameters this model does not have")
            for name, value in values.items():
                if not isinstance(value, torch.Tensor) or not value.isfinite().all():
                    raise damaged(f"optimizer {name!r} is not a finite tensor")
                if value.dim() and value.shape != parameters[index].shape:
                    raise damaged(f"optimizer {name!r} has shape {tuple(value.shape)}, not {tuple(parameters[index].shape)}")

    def _adopt_best(self) -> None:
        """Resumed into another folder: bring the run's best.pt along, so that a best model exists
        even if no resumed epoch beats it."""
        if self.resumed_from is None or self.resumed_from.parent.resolve() == self.run_dir.resolve():
            return
        source, target = self.resumed_from.parent / "best.pt", self.run_dir / "best.pt"
        try:
            data = read_checkpoint(source)
            best = model_from_checkpoint(data, source)
        except CheckpointError as error:
            print(f"note: {error} The best of the resumed epochs becomes best.pt.", file=sys.stderr)
            self.best_accuracy, self.best_epoch = -1.0, 0
            return
        if best.config != self.model.config or list(best.labels) != list(self.model.labels):
            print(f"warning: {source}: is not this run's model (other settings or labels), so it is left "
                  "behind; the best of the resumed epochs becomes best.pt.", file=sys.stderr)
            self.best_accuracy, self.best_epoch = -1.0, 0
            return
        self._save_model(target.name, best, data["metadata"])

    # ---- the run ------------------------------------------------------------------------------

    def fit(self) -> dict:
        """Train until the last epoch or early stop. Ctrl-C keeps `last.pt` (the last whole epoch)
        and writes the weights of the unfinished epoch to `interrupted.pt`. The run folder is locked
        meanwhile: a second run into it is refused instead of interleaving with this one."""
        try:
            with folder_lock(self.run_dir, "training"):
                for stale in stale_temporary_files(self.run_dir):  # from a save that was killed
                    stale.unlink(missing_ok=True)
                self._adopt_best()
                self._run_epochs()
                return self.finish()
        except FolderBusy as error:
            raise TrainingError(f"{error}; wait for that run to end or choose another --out.") from None
        except OSError as error:  # the metrics log or a report on a full disk; checkpoints say so themselves
            raise TrainingError(
                f"{error.filename or self.run_dir}: could not write ({error.strerror or error}); free some disk "
                f"space and resume from {self.run_dir / 'last.pt'}."
            ) from None

    def _run_epochs(self) -> None:
        c = self.config
        log = (self.run_dir / "metrics.jsonl").open("w")  # rewritten from the history a resume brings
        for metrics in self.history:
            log.write(json.dumps(metrics) + "\n")
        if self.epoch == 0:
            self.compute_normalization()
        try:
            while self.epoch < c.epochs:
                started = time.perf_counter()
                metrics = self.train_epoch(self.epoch)
                if not all(torch.isfinite(p).all() for p in self.model.parameters()):
                    raise TrainingError(
                        f"the weights became infinite or NaN in epoch {self.epoch + 1}; nothing was saved from it; "
                        f"lower --lr (now {c.learning_rate}) or --clip-grad."
                    )
                if len(self.rows["validation"]):
                    with self._averaged():
                        predictions, validation_loss = self.predict("validation")
                    accuracy = float((predictions == self.targets["validation"].numpy()).mean())
                    improved = accuracy > self.best_accuracy
                else:  # no validation speakers (a refit on all but the test split): keep the newest epoch
                    validation_loss = accuracy = None
                    improved = True
                self.epoch += 1
                metrics.update(
                    epoch=self.epoch,
                    validation_loss=validation_loss,
                    validation_accuracy=accuracy,
                    learning_rate=self.optimizer.param_groups[0]["lr"],
                    seconds=round(time.perf_counter() - started, 2),
                )
                self.history.append(metrics)
                log.write(json.dumps(metrics) + "\n")
                log.flush()
                if improved:
                    self.best_accuracy, self.best_epoch = (accuracy if accuracy is not None else -1.0), self.epoch
                    with self._averaged():
                        self._save("best.pt", self._metadata())
                self.save_last()
                print(
                    f"epoch {self.epoch:3d}/{c.epochs}  loss {metrics['train_loss']:.3f}  "
                    f"train {metrics['train_accuracy']:.1%}  validation {'-' if accuracy is None else f'{accuracy:.1%}'}"
                    f"{'  *best' if improved else ''}  ({metrics['seconds']:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
                if c.patience and self.epoch - self.best_epoch >= c.patience:
                    print(f"early stop: no better validation accuracy for {c.patience} epochs.", file=sys.stderr)
                    break
        except KeyboardInterrupt:
            self._save("interrupted.pt", self._metadata(interrupted=True))
            print(
                f"\ninterrupted during epoch {self.epoch + 1}: last.pt holds epoch {self.epoch}; continue with "
                f"`speechcmd train --resume {self.run_dir / 'last.pt'}` and the same options.",
                file=sys.stderr,
            )
            raise
        finally:
            log.close()

    def finish(self) -> dict:
        """Test the best model, write its report into best.pt, and plot the run. With neither test
        nor validation speakers the result is {"split": None}: there is nothing to test on."""
        best = read_checkpoint(self.run_dir / "best.pt")
        self.model.load_state_dict(best["state_dict"])
        split = next((name for name in ("test", "validation") if len(self.rows[name])), None)
        result: dict = {"split": None}
        if split is not None:
            predictions, _ = self.predict(split)
            result = {**report(self.targets[split].numpy(), predictions, self.dataset.labels), "split": split}
            (self.run_dir / f"{split}_report.json").write_text(json.dumps(result, indent=1))
            self._save(
                "best.pt",
                {**best["metadata"], f"{split}_accuracy": result["accuracy"], f"{split}_per_class": result["per_class"]},
            )
        import matplotlib

        # Labels are folder names, not TeX: "$x^$" must be drawn as typed, not parsed.
        with matplotlib.rc_context({"text.parse_math": False}):
            try:
                if split is not None:
                    plot_confusion(result, self.run_dir / "confusion.png", f"{split} split")
                plot_curves(self.history, self.run_dir / "learning_curves.png")
            except (ValueError, RuntimeError, OSError) as error:  # the model is saved; plots are extras
                print(f"note: could not draw the run's plots ({error}); the models are saved.", file=sys.stderr)
        return result


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    validated = any(h.get("validation_accuracy") is not None for h in history)  # not in a refit
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    left.plot(epochs, [h["train_loss"] for h in history], label="train (augmented, smoothed)")
    right.plot(epochs, [h["train_accuracy"] for h in history], label="train (augmented)")
    if validated:
        left.plot(epochs, [h["validation_loss"] for h in history], label="validation")
        right.plot(epochs, [h["validation_accuracy"] for h in history], label="validation")
    left.set(xlabel="epoch", ylabel="loss", title="Loss")
    right.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1))
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
