"""The architecture holds: model knows nothing above it, train knows model, app knows both."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(config: Path, cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"PYTHONPATH": str(pythonpath)} if pythonpath else {})}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )


def test_the_layer_contract_is_kept():
    result = lint_imports(ROOT / "pyproject.toml", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "app above train above model KEPT" in result.stdout


def test_an_upward_import_from_model_breaks_the_contract(tmp_path):
    # A copy of the three layers as the package speechcmd, with model importing the app.
    package = tmp_path / "speechcmd"
    for layer in ("app", "model", "train"):
        shutil.copytree(ROOT / layer, package / layer, ignore=shutil.ignore_patterns("__pycache__"))
    audio = package / "model" / "audio.py"
    audio.write_text(audio.read_text() + "\nfrom speechcmd.app import cli_common  # an upward import\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")

    result = lint_imports(tmp_path / "pyproject.toml", tmp_path, pythonpath=tmp_path)

    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "speechcmd.model.audio -> speechcmd.app.cli_common" in result.stdout


def test_a_model_py_in_the_working_folder_does_not_shadow_speechcmd(tmp_path):
    (tmp_path / "model.py").write_text("raise SystemExit('the wrong model module was imported')\n")
    (tmp_path / "app.py").write_text("raise SystemExit('the wrong app module was imported')\n")
    result = subprocess.run(
        [sys.executable, "-m", "speechcmd.app.cli", "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("speechcmd ")
