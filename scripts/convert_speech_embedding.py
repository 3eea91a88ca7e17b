"""Convert Google's speech_embedding network to `resources/models/speech_embedding.pt`.

The network (https://tfhub.dev/google/speech_embedding/1, Apache License 2.0; Lin et al. 2020)
ships as ONNX inside the `openwakeword` 0.4.0 wheel on PyPI (Apache License 2.0), the last
release that bundles it. This script fetches that wheel with pip (or takes one you have), reads the
ONNX graph's weights with the `onnx` package (`pip install onnx`; not needed at run time), checks
the graph is the one `speechcmd.model.features.SpeechEmbedding` implements, writes a plain tensor
dict that loads with `torch.load(..., weights_only=True)`, and, when `onnxruntime` is installed,
checks the converted network against the original on a test signal.

    python scripts/convert_speech_embedding.py [--wheel openwakeword-0.4.0-py3-none-any.whl]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from speechcmd.model.features import EMBEDDING_LAYERS, SpeechEmbedding, pretrained_embedding_path

WHEEL = "openwakeword==0.4.0"
MEMBER = "openwakeword/resources/models/embedding_model.onnx"
PREFIX = "model/conv2d"


def fetch_wheel(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "--dest", str(folder)], check=True)
    return next(folder.glob("openwakeword-*.whl"))


def convert(onnx_bytes: bytes) -> dict[str, torch.Tensor]:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(onnx_bytes).graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    norm = next(node for node in graph.node if node.op_type == "BatchNormalization")
    gamma, beta, mean, var = (arrays[name] for name in norm.input[1:])
    epsilon = next(a.f for a in norm.attribute if a.name == "epsilon")
    scale = gamma / np.sqrt(var + epsilon)
    weights = {
        "first_weight": arrays[f"{PREFIX}/StatefulPartitionedCall/StatefulPartitionedCall/Conv2D/ReadVariableOp:0"],
        "first_scale": scale,
        "first_shift": beta - mean * scale,
        "last_weight": arrays[f"{PREFIX}_19/Conv2D/ReadVariableOp:0"],
    }
    for k in range(len(EMBEDDING_LAYERS)):
        weights[f"weight{k}"] = arrays[f"{PREFIX}_{k + 1}/Conv2D_weights_fused_bn"]
        weights[f"bias{k}"] = arrays[f"{PREFIX}_{k + 1}/Conv2D_bias_fused_bn"]
    shapes = SpeechEmbedding().state_dict()
    for name, value in weights.items():
        if tuple(value.shape) != tuple(shapes[name].shape):
            raise SystemExit(f"{name}: the ONNX graph has shape {value.shape}, SpeechEmbedding expects {tuple(shapes[name].shape)}.")
    return {name: torch.from_numpy(np.array(value, dtype=np.float32)) for name, value in weights.items()}


def check_against_onnx(onnx_bytes: bytes, weights: dict[str, torch.Tensor]) -> float | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    frontend = SpeechEmbedding()
    frontend.load_state_dict({**frontend.state_dict(), **weights})
    rng = np.random.default_rng(0)
    t = np.arange(16_000) / 16_000
    wave = (0.3 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.01 * rng.standard_normal(16_000)).astype(np.float32)
    mel = frontend.log_mel(torch.from_numpy(wave)[None])  # (1, 173, 32)
    session = onnxruntime.InferenceSession(onnx_bytes)
    windows = np.stack([mel[0, 8 * j : 8 * j + 76].numpy() for j in range(13)])[..., None]
    expected = session.run(None, {session.get_inputs()[0].name: windows})[0].reshape(13, 96)
    return float(np.abs(frontend.raw(torch.from_numpy(wave)[None])[0].detach().numpy() - expected).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="an openwakeword 0.4.0 wheel (default: pip download it)")
    parser.add_argument("--out", type=Path, default=pretrained_embedding_path())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        wheel = args.wheel or fetch_wheel(Path(folder))
        with zipfile.ZipFile(wheel) as archive:
            onnx_bytes = archive.read(MEMBER)
    weights = convert(onnx_bytes)
    error = check_against_onnx(onnx_bytes, weights)
    torch.save(weights, args.out)
    print(f"{args.out}: {sum(v.numel() for v in weights.values()):,} weights from {MEMBER} "
          f"(sha256 {hashlib.sha256(onnx_bytes).hexdigest()[:16]}...); "
          + ("onnxruntime not installed, not checked" if error is None else f"largest difference from onnxruntime {error:.1e}"))


if __name__ == "__main__":
    main()
