#!/usr/bin/env bash
# Install speechcmd into a project-local virtual environment (.venv).
#   bash scripts/setup.sh        the app and its system libraries
#   bash scripts/setup.sh test   the same plus the test extras
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-app}
case "$mode" in app|test) ;; *) echo "usage: bash scripts/setup.sh [app|test]" >&2; exit 2 ;; esac

# PortAudio for the microphone, the X/EGL libraries Qt's xcb platform loads, python3-venv for .venv.
packages=(libportaudio2 python3-venv libegl1 libgl1 libglib2.0-0 libfontconfig1 libdbus-1-3
          libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1
          libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0)
# The tests also synthesize speech with many voices.
[ "$mode" = test ] && packages+=(espeak-ng flite)
if command -v dpkg-query >/dev/null; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "Installing system packages: ${missing[*]}"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "speechcmd needs system packages; run: sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
  fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip

# Without an NVIDIA GPU, PyTorch's CPU build (about 1 GB instead of 6) from PyTorch's own index;
# where that index cannot be reached, the default index's build, which also runs on the CPU.
if ! .venv/bin/python -c "import torch, torchaudio" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    echo "NVIDIA GPU found: installing PyTorch with CUDA from the default index."
  elif .venv/bin/python -m pip install -q --timeout 15 --retries 1 --index-url https://download.pytorch.org/whl/cpu \
         torch torchaudio 2>/dev/null; then
    echo "No NVIDIA GPU: installed PyTorch's CPU build from download.pytorch.org."
  else
    echo "No NVIDIA GPU, and download.pytorch.org cannot be reached: installing PyTorch from the default index," \
         "a CUDA build of about 5.8 GB that also runs on the CPU (the CPU build is about 1 GB; to switch later:" \
         ".venv/bin/pip install --force-reinstall --index-url https://download.pytorch.org/whl/cpu torch torchaudio)."
  fi
fi
extras=""
[ "$mode" = test ] && extras="[dev]"
.venv/bin/python -m pip install -q -e ".$extras"
.venv/bin/python -c 'import torch; print(f"speechcmd is installed in .venv with torch {torch.__version__}", "(CUDA build)" if torch.version.cuda else "(CPU build)")'
