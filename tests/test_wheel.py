"""The installed wheel: one `speechcmd` package with the bundled model, working from anywhere."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import tone, write_wav

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "NOTICE", "LICENSES", "app", "model", "train", "resources")


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the sources, so that the build leaves nothing in the checkout."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if (ROOT / name).is_dir() else {}))
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", source, "-w", dist])
    (built,) = dist.glob("speechcmd-*.whl")
    return built


def test_the_wheel_holds_one_speechcmd_package_with_the_bundled_model_and_its_card(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"speechcmd", wheel.name.split("-py")[0] + ".dist-info"}
    for expected in ("speechcmd/app/cli.py", "speechcmd/model/network.py", "speechcmd/train/loop.py",
                     "speechcmd/resources/models/speechcmd-lstm.pt", "speechcmd/resources/models/README.md"):
        assert expected in names
    assert not [name for name in names if "/tests/" in name or "__pycache__" in name]


def test_the_wheel_carries_the_mit_and_apache_licences_and_the_notice_for_the_speech_embedding(wheel):
    archive = zipfile.ZipFile(wheel)
    licences = {name.split("/licenses/", 1)[1]: name for name in archive.namelist() if "/licenses/" in name}
    assert {"LICENSE", "NOTICE", "LICENSES/Apache-2.0.txt"} <= set(licences)
    assert "MIT License" in archive.read(licences["LICENSE"]).decode()
    assert "Apache License" in archive.read(licences["LICENSES/Apache-2.0.txt"]).decode()
    notice = archive.read(licences["NOTICE"]).decode()
    assert "speech_embedding" in notice and "Apache" in notice and "CC BY 4.0" in notice


def test_the_installed_wheel_classifies_a_clip_from_another_folder(wheel, tmp_path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel])
    # The dependencies (torch, Qt...) come from the test environment; speechcmd only from the wheel.
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    clip = write_wav(elsewhere / "tone.wav", tone(700, 1.0, amplitude=0.2))

    where = run([python, "-c", "import speechcmd.model; print(speechcmd.model.__file__)"], cwd=elsewhere).stdout
    result = run([venv / "bin" / "speechcmd", "classify", "--json", "--device", "cpu", clip.name], cwd=elsewhere)

    in_checkout = run([sys.executable, "-m", "speechcmd.app.cli", "classify", "--json", "--device", "cpu", clip], cwd=ROOT)

    assert Path(where.strip()).is_relative_to(venv)
    (installed,) = [json.loads(line) for line in result.stdout.splitlines()]
    (reference,) = [json.loads(line) for line in in_checkout.stdout.splitlines()]
    assert installed["path"] == "tone.wav"
    assert (installed["label"], installed["top"]) == (reference["label"], reference["top"])  # the same bundled model
