"""Checkpoints: one file with weights, config, labels, normalization statistics and metadata.

The file is a plain dict of tensors, strings and numbers, loaded with `weights_only=True`, so a
model file from elsewhere cannot run code. Saving writes a temporary file beside the target and
renames it over the target, so an interrupted save (or a full disk) leaves the previous file intact.
"""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import tempfile
import warnings
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from speechcmd.model import __version__
from speechcmd.model.config import check_labels, known_settings
from speechcmd.model.network import ModelConfig, SpeechCommandsModel, upgrade_state_dict

FORMAT = "speechcmd-checkpoint"
FORMAT_VERSION = 2  # 2: one module per recurrent layer (network.upgrade_state_dict reads 1)
BUNDLED_MODEL_NAME = "speechcmd-lstm.pt"
# torch.save stores its records uncompressed, so a model file unpacks to about its own size. The
# largest model the settings allow (8 layers of 1024 units), with its optimizer state, is ~1 GB.
MAX_UNPACKED_BYTES = 1 << 30
MAX_UNPACK_RATIO = 4  # a deflated record that grows more than this is a zip bomb, not a checkpoint
MAX_RECORDS = 10_000


def bundled_model_path() -> Path:
    """The default model shipped in the package, wherever it is installed."""
    from speechcmd.model.bundled import bundled_path

    return bundled_path(BUNDLED_MODEL_NAME.removesuffix(".pt"))


class CheckpointError(ValueError):
    """A model file cannot be used; the message is one sentence naming the file."""


def _first_line(error: BaseException, limit: int = 120) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:limit] if lines else type(error).__name__


def checkpoint_dict(model: SpeechCommandsModel, metadata: dict[str, Any] | None = None, **extra) -> dict:
    """The saved form of `model`. `extra` holds training state (optimizer, epoch...) for resuming."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "labels": list(model.labels),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": {
            "speechcmd_version": __version__,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **(metadata or {}),
        },
        **extra,
    }


def save_target_problem(path: str | Path) -> str | None:
    """Why a model must not be saved at `path`, or None. The save renames a new file over the old
    one, so a target that is not a regular file (a folder, a pipe, a device node such as /dev/null,
    or a link to one) would be replaced by a model, or fail half-way; only new paths and regular
    files are written."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():  # follows links: a link to /dev/null is refused too
            kind = "a folder" if path.is_dir() else "not a regular file (a device, pipe or socket)"
            return f"it is {kind}, which a model file must not replace; give the path of a new or existing .pt file"
        for folder in path.parents:
            if folder.exists() or folder.is_symlink():
                if not folder.is_dir():
                    return f"{folder} is not a folder; give a path inside a folder"
                if not os.access(folder, os.W_OK | os.X_OK):
                    return f"{folder} may not be written (permission denied); give a path in a folder you may write to"
                break
    except OSError as error:  # a name too long to look up, a folder above it that may not be searched
        return f"it cannot be looked up ({error.strerror}); give a shorter path, in a folder you may write to"
    return None


def save_checkpoint(path: str | Path, model: SpeechCommandsModel, metadata: dict | None = None, **extra) -> Path:
    """Write atomically: the old file at `path` survives any failure while writing. A target that
    exists and is not a regular file is refused (`save_target_problem`) with an OSError."""
    path = Path(path)
    if problem := save_target_problem(path):
        raise OSError(errno.EEXIST, problem)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            try:
                torch.save(checkpoint_dict(model, metadata, **extra), file)
            except RuntimeError as error:
                # torch's zip writer reports a write that failed part-way ("unexpected pos") as a
                # RuntimeError; on a full disk, say so as the OSError of any other write would.
                if shutil.disk_usage(path.parent).free < 1 << 20:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from None
                raise OSError(errno.EIO, f"writing failed ({_first_line(error)})") from None
            file.flush()
            os.fsync(file.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would hide a shared model from others
        if problem := save_target_problem(path):  # again: it may have changed while we wrote
            raise OSError(errno.EEXIST, problem)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def stale_temporary_files(folder: str | Path) -> list[Path]:
    """Temporary files that `save_checkpoint` leaves when killed mid-save (SIGKILL, power loss)."""
    return sorted(Path(folder).glob(".*.pt.*.tmp"))


def _check_sizes(path: Path, archive: zipfile.ZipFile) -> None:
    """Refuse, before anything is inflated, a file that would unpack to far more than it holds."""
    records = archive.infolist()
    unpacked = sum(record.file_size for record in records)
    limit = min(MAX_UNPACKED_BYTES, MAX_UNPACK_RATIO * path.stat().st_size + (1 << 20))
    if len(records) > MAX_RECORDS or unpacked > limit:
        raise CheckpointError(
            f"{path}: refused to load: it claims {unpacked / 1e6:,.0f} MB in {len(records):,} parts once unpacked "
            f"from {path.stat().st_size / 1e6:,.1f} MB, which no speechcmd model file does; only use files saved by speechcmd."
        )


def _not_a_model_file(path: Path, head: bytes) -> CheckpointError:
    if not head:
        kind = "an empty file"
    elif all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
        kind = "a text file"
    else:
        kind = "a file of another kind"
    return CheckpointError(
        f"{path}: not a model file ({kind}, not a checkpoint); use a .pt file that `speechcmd train` or `speechcmd adapt` saved."
    )


def _damaged(path: Path, what: str = "cut short or damaged") -> CheckpointError:
    return CheckpointError(f"{path}: the model file is {what}; train, save or copy it again.")


def _check_container(path: Path) -> None:
    """Refuse, in our own words, a file that is not what torch.load can read safely: no zip and no
    pickle at all (a text file), a cut or damaged zip, a zip that is no PyTorch file, a zip that
    would unpack to far more than it holds. torch.load does not verify the CRC-32 that its zip format
    stores for every record, so a flipped byte could load as a wrong label or weight; zipfile's
    check catches it first."""
    try:
        with open(path, "rb") as file:
            head = file.read(512)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error.strerror or 'read failed'}); check who may read it.") from None
    if head[:1] == b"\x80":
        return  # a pickle (the legacy torch.save format): torch.load's weights-only unpickler judges it
    if head[:4] != b"PK\x03\x04":
        raise _not_a_model_file(path, head)
    try:
        with zipfile.ZipFile(path) as archive:
            _check_sizes(path, archive)
            if not any(name == "data.pkl" or name.endswith("/data.pkl") for name in archive.namelist()):
                raise CheckpointError(
                    f"{path}: not a model file (a zip archive, not a checkpoint); use a .pt file that `speechcmd train` or `speechcmd adapt` saved."
                )
            damaged = archive.testzip()
    except CheckpointError:
        raise
    except Exception:  # a cut or damaged directory can make zipfile raise almost anything
        raise _damaged(path) from None
    if damaged is not None:
        raise _damaged(path, f"damaged (its part {damaged!r} fails its checksum)")


def read_checkpoint(path: str | Path) -> dict:
    """Load and validate the raw dict; raises `CheckpointError` with one sentence of our own for
    each kind of bad file (never PyTorch's text, which is long and speaks of its internals)."""
    path = Path(path)
    try:
        found = path.is_file()
    except OSError as error:  # a name too long to look up, a folder above it that may not be searched
        raise CheckpointError(f"{path}: cannot be looked up ({error.strerror}); check the path.") from None
    if not found:
        raise CheckpointError(f"{path}: no such model file; check the path or train one with `speechcmd train`.")
    _check_container(path)
    try:
        with warnings.catch_warnings():  # torch's note on unusual pickle protocols says nothing to a user
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        text = str(error)
        if "Unsupported global" in text or "Unsupported class" in text:
            raise CheckpointError(
                f"{path}: refused to load, for safety: it holds Python objects that only running code could rebuild "
                "(a model saved by another program, or a file made to run code); use a model file that speechcmd saved."
            ) from None
        if "weights only load failed" in text.lower():  # a pickle in a form no checkpoint has
            raise CheckpointError(
                f"{path}: refused to load: a Python pickle, not a checkpoint; use a .pt file that `speechcmd train` or `speechcmd adapt` saved."
            ) from None
        raise _damaged(path) from None  # the unpickler met bytes it cannot read at all
    except Exception:  # a damaged file's unpickler also raises KeyError, IndexError, struct.error...
        raise _damaged(path) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: a PyTorch file of another program, not a speechcmd model; use a .pt file that `speechcmd train` or `speechcmd adapt` saved."
        )
    if not isinstance(data.get("format_version", 0), int):
        raise CheckpointError(f"{path}: its format version is not a number; the model file is damaged.")
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: saved by a newer speechcmd (format {data.get('format_version')}); upgrade speechcmd to load it."
        )
    for key in ("config", "labels", "state_dict"):
        if key not in data:
            raise CheckpointError(f"{path}: the model file has no {key!r}; it is incomplete or damaged.")
    if not isinstance(data.get("metadata", {}), dict):
        raise CheckpointError(f"{path}: its 'metadata' is not a dictionary; the model file is damaged.")
    return data


def model_from_checkpoint(data: dict, path: str | Path = "checkpoint") -> SpeechCommandsModel:
    """Build the model a validated checkpoint dict describes."""
    try:
        config = ModelConfig.from_dict(data["config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its settings are unusable ({_first_line(error, 400).rstrip('.')}); the model file is damaged.") from None
    labels = data["labels"]
    try:
        check_labels(labels)
    except ValueError as error:
        raise CheckpointError(f"{path}: refused to load: {str(error).rstrip('.')}; the model file is damaged or not speechcmd's.") from None
    try:
        # Check every layer's weights against the settings before allocating: a damaged hidden
        # size or layer count must not make the loader allocate gigabytes first.
        if not isinstance(data["state_dict"], dict):
            raise ValueError("its weights are not a dictionary of tensors")
        state_dict = data["state_dict"]
        if data.get("format_version", 0) < 2:
            state_dict = upgrade_state_dict(state_dict)
        gates = 3 if config.cell == "gru" else 4
        for layer in range(config.num_layers):
            recurrent = state_dict.get(f"recurrent.layers.{layer}.rnn.weight_hh_l0")
            if not isinstance(recurrent, torch.Tensor) or tuple(recurrent.shape) != (gates * config.hidden_size, config.hidden_size):
                raise ValueError("its weights do not have the sizes its settings give")
        model = SpeechCommandsModel(config, labels, pretrained=False)  # the state dict below has every weight
        model.load_state_dict(state_dict, strict=True)
    except (TypeError, ValueError, RuntimeError, KeyError) as error:
        # Our own checks say what is wrong; PyTorch's load_state_dict lists every key, in its words.
        detail = _first_line(error, 200).rstrip(".") if isinstance(error, ValueError) else "its weights do not fit its settings"
        raise CheckpointError(f"{path}: the model file does not match this version of speechcmd ({detail}).") from None
    if problem := model_problem(model):
        raise CheckpointError(f"{path}: {problem}; use another model file.")
    return model.eval()


# The front-end's normalization, (features - mean) / std: set_statistics keeps std >= 1e-5, and
# features are tens of units, so a std below MIN_STD or a mean beyond MAX_MEAN is damage that turns
# every feature into inf and every score into NaN.
MIN_STD, MAX_STD, MAX_MEAN = 1e-6, 1e6, 1e6


def model_problem(model: SpeechCommandsModel) -> str | None:
    """What makes loading refuse `model`'s numbers (a phrase: "holds ..."), or None. Checked at load,
    and when a model is taught and saved, so that no command saves a model that cannot be loaded."""
    if not all(tensor.isfinite().all() for tensor in model.state_dict().values()):
        return "holds NaN or infinite weights (its training diverged)"
    std, mean = model.frontend.std, model.frontend.mean
    if not ((std >= MIN_STD) & (std <= MAX_STD)).all() or not (mean.abs() <= MAX_MEAN).all():
        return (f"holds an unusable feature normalization (a spread of {std.min().item():.3g} to {std.max().item():.3g}, "
                f"a mean up to {mean.abs().max().item():.3g})")
    return None


class CheckpointWarning(UserWarning):
    """Something in a model file was ignored; the message is one sentence naming the file."""


def _words(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def split_record_problem(split: Any) -> str | None:
    """What is wrong with a data-split record (metadata's `split_parameters`: the keyword arguments
    of train.data.build_dataset, as `speechcmd train` saves them), or None."""
    if not isinstance(split, dict):
        return "it is not a dictionary"
    kinds = {"labels": (str, list), "validation_fraction": (int, float), "test_fraction": (int, float),
             "salt": (str,), "unknown_fraction": (int, float), "seed": (int,)}
    for name, value in split.items():
        if name not in kinds:
            return f"an unknown field {name!r}"
        if isinstance(value, bool) or not isinstance(value, kinds[name]):
            return f"{name} is {value!r}"
        if isinstance(value, list) and not _words(value):
            return f"its {name} are not words"
    return None


# The metadata fields that commands read back (teaching, evaluating, resuming), and what each must be.
# A file from elsewhere may hold anything there; a field that is not what it should be is dropped.
METADATA_FIELDS = {
    "command": lambda value: isinstance(value, str),
    "trained_on": lambda value: isinstance(value, str),
    "split": lambda value: isinstance(value, str),
    "split_parameters": lambda value: split_record_problem(value) is None,
    "train_config": lambda value: isinstance(value, dict) and isinstance(value.get("augment", {}), dict),
    "training_speakers": _words,
    "teachers": _words,
}


def checked_metadata(metadata: dict, path: str | Path) -> dict:
    """`metadata` without the fields that are unusable (a damaged or hand-edited file), each dropped
    with a `CheckpointWarning`: an unusable detection policy leaves the model deciding with the
    default policy, any other field is as if the file had none."""
    from speechcmd.model.detection import DetectionPolicy

    dropped = [name for name, usable in METADATA_FIELDS.items() if name in metadata and not usable(metadata[name])]
    if dropped:
        warnings.warn(CheckpointWarning(
            f"{path}: its metadata field{'s' if len(dropped) > 1 else ''} {', '.join(dropped)} "
            f"{'are' if len(dropped) > 1 else 'is'} damaged and ignored."
        ), stacklevel=3)
        metadata = {key: value for key, value in metadata.items() if key not in dropped}
    stored = metadata.get("detection_policy")
    if stored is None:
        return metadata
    try:
        DetectionPolicy(**known_settings(DetectionPolicy, stored, "detection policy"))
    except (TypeError, ValueError) as error:
        warnings.warn(CheckpointWarning(
            f"{path}: its stored detection policy is unusable ({_first_line(error).rstrip('.')}), so the default policy is used."
        ), stacklevel=3)
        return {key: value for key, value in metadata.items() if key != "detection_policy"}
    return metadata


def load_model(path: str | Path | None = None, device: str | torch.device = "cpu") -> SpeechCommandsModel:
    """Load a checkpoint (the bundled model when `path` is None) ready for inference."""
    if path is None:
        path = bundled_model_path()
        if not path.is_file():
            raise CheckpointError(
                f"{path}: the bundled model is missing; train one with `speechcmd train` and pass it with --model."
            )
    data = read_checkpoint(path)
    model = model_from_checkpoint(data, path)
    model.metadata = {**checked_metadata(data.get("metadata", {}), path), "path": str(path)}
    return model.to(device)
