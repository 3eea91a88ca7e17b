"""Models are loaded off the GUI thread and tried before they are used.

A model file can be large, damaged or hostile (a zip bomb, absurd settings); loading it on the GUI
thread froze the window for seconds. `ModelLoader.load` reads it on a thread, then runs it once on
a second of silence and of noise: a model that loads but fails or gives NaN when run is refused
here, so it never replaces the good one. The result comes back as a signal.
"""

from __future__ import annotations

import traceback

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from speechcmd.app.jobs import Jobs, emit


def model_name(path: str | None) -> str:
    return f"{Path(path).name}" if path else "the bundled model"


def try_model(model) -> str | None:
    """Why `model` cannot be used (one clause), or None when it runs and gives probabilities."""
    import torch

    samples = model.config.features.window_samples
    rng = np.random.default_rng(0)
    windows = np.stack([np.zeros(samples), 0.1 * rng.standard_normal(samples)]).astype(np.float32)
    try:
        with torch.inference_mode():
            probabilities = model.trace(torch.from_numpy(windows)).probabilities
    except Exception as error:  # any failure of a foreign model's computation is the model's fault
        return f"it fails when run ({type(error).__name__}: {error})"
    if not torch.isfinite(probabilities).all():
        return "it gives NaN or infinite probabilities when run"
    return None


class ModelLoader(QObject):
    loaded = Signal(int, object, str)  # token, model, the name to show
    failed = Signal(int, str)  # token, why, in a sentence

    def __init__(self, parent=None):
        super().__init__(parent)
        self.token = 0
        self.jobs = Jobs("model-load")

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def load(self, path: str | None) -> int:
        """Load `path` (None: the bundled model) on a thread; the newest request wins."""
        self.token += 1
        self.jobs.start(self._job, self.token, path)
        return self.token

    def shutdown(self) -> None:
        """Wait for a load under way, however long it takes: a thread left inside torch when the
        interpreter ends aborts the process (exit 134). A load is bounded by what a model file may
        hold and cost (model.checkpoint, model.config)."""
        self.token += 1  # whatever is still loading is not wanted any more
        self.jobs.join(timeout=None)

    def _job(self, token: int, path: str | None) -> None:
        import torch

        from speechcmd.model.bundled import bundled_names, model_path, summary
        from speechcmd.model.checkpoint import CheckpointError, load_model

        torch.set_num_threads(1)  # see RecognitionWorker.set_model
        try:
            resolved = model_path(path)  # a file, or a bundled model's name (then another path)
            model = load_model(resolved)
        except CheckpointError as error:
            result = (self.failed, token, str(error))
        except Exception as error:  # a bug: keep the traceback, and keep the window usable
            traceback.print_exc()
            result = (self.failed, token, f"{path or 'the bundled model'}: loading stopped after an internal error ({error!r}); see the terminal.")
        else:
            problem = try_model(model)
            bundled = resolved is None or resolved != Path(path)
            name = f"{Path(model.metadata.get('path', 'model')).name} (bundled)" if bundled else model_name(path)
            result = (self.failed, token, f"{path}: {problem}.") if problem else (self.loaded, token, model, name)
        emit(*result)
        # The Model menu's one-line summaries read both bundled files: read here, off the GUI thread,
        # so that opening the menu finds them cached (model.bundled.summary) instead of loading torch.
        for bundled_name in bundled_names():
            try:
                summary(bundled_name)
            except Exception:  # a damaged installation: the menu says so when it opens
                pass
