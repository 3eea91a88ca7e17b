"""A broken PyTorch install is one sentence that says what to install, not a traceback."""

import os
import subprocess
import sys


def test_a_torchaudio_that_does_not_fit_torch_is_one_sentence_naming_the_fix(tmp_path):
    # What PyPI's CUDA torchaudio does beside the CPU torch wheel: it dies loading a CUDA library.
    fake = tmp_path / "torchaudio"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        'raise OSError("libc10_cuda.so: cannot open shared object file: No such file or directory")\n')
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "speechcmd.app.cli", "classify", str(tmp_path / "missing.wav"), str(clip)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "torchaudio" in lines[0] and "libc10_cuda.so" in lines[0] and "pip install --force-reinstall torch torchaudio" in lines[0]


def test_other_os_errors_are_not_taken_for_a_broken_install():
    from speechcmd.app.cli import torch_install_problem

    assert torch_install_problem(OSError(28, "No space left on device")) is None
    assert torch_install_problem(ImportError("No module named 'sounddevice'", name="sounddevice")) is None
    assert "torch" in torch_install_problem(ImportError("No module named 'torch'", name="torch"))
