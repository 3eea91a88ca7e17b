"""The models shipped in the package, by name: what `--model NAME` and the window's Model menu offer.

Each is a file in speechcmd.resources/models named after it. `BUNDLED_MODELS` lists them in the
order they are offered; the first is the default (the most accurate). A model's one-line summary
(what it is, what it costs, its headline figures) is its metadata's `summary`, written when it was
bundled (scripts/bundle_model.py --summary), so the menu never states a figure the file does not.
Names and paths need no torch (the window lists them before torch is imported); summaries read the files.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

BUNDLED_MODELS = (
    "speechcmd-lstm",  # the speech embedding -> LSTM, the default (checkpoint.BUNDLED_MODEL_NAME)
    "speechcmd-mfcc-lstm",  # MFCC -> LSTM, taught by the embedding model
)


def bundled_path(name: str) -> Path:
    """Where the bundled model `name` (without .pt) is, wherever the package is installed."""
    return Path(str(resources.files("speechcmd.resources") / "models" / f"{name}.pt"))


def bundled_names() -> list[str]:
    """The bundled models present in this installation, the default first."""
    return [name for name in BUNDLED_MODELS if bundled_path(name).is_file()]


def model_path(model: str | Path | None) -> Path | None:
    """What `--model` names: an existing file is itself, a bundled model's name (with or without
    .pt) is its file, None is None (the default model). Anything else is refused in one sentence
    that lists the names, unless it is a path into a folder (whose loading says what is missing)."""
    if model is None:
        return None
    path = Path(model)
    try:
        if path.is_file():
            return path
    except OSError:  # a name too long to look up: loading it says so
        return path
    name = str(model).removesuffix(".pt")
    if name in bundled_names():
        return bundled_path(name)
    if len(path.parts) == 1:
        from speechcmd.model.checkpoint import CheckpointError

        raise CheckpointError(
            f"{model}: no such model file, nor a bundled model; the bundled models are {', '.join(bundled_names())}."
        )
    return path


def summary(name: str) -> str:
    """The bundled model `name`'s one line: what it is, its cost, its headline figures (its
    metadata's `summary`; for a file without one, its front-end and test accuracy)."""
    return _summary(str(bundled_path(name)))


@lru_cache(maxsize=None)
def _summary(path: str) -> str:
    from speechcmd.model.checkpoint import read_checkpoint

    data = read_checkpoint(path)
    metadata = data.get("metadata", {})
    if isinstance(metadata.get("summary"), str) and metadata["summary"].strip():
        return metadata["summary"].strip()
    features = data.get("config", {}).get("features", {})
    front_end = "speech embedding" if features.get("kind") == "speech_embedding" else "MFCC"
    accuracy = metadata.get("test_accuracy")
    figures = f"; {accuracy:.1%} on unseen speakers" if isinstance(accuracy, float) else ""
    return f"{front_end} -> LSTM{figures}"
