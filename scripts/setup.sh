#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: system packages, .venv, Python packages, sample clips.
# Re-runs are cheap: the Python step is skipped while a stamp of the requirement files matches.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="ffmpeg fluidsynth timgm6mb-soundfont fluid-soundfont-gm fonts-dejavu-core"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
pip=".venv/bin/pip"
stamp=".venv/.symmv-setup-$(cat scripts/setup.sh pyproject.toml requirements/*.txt | sha256sum | cut -c1-16)"
exec 9>"${SYMMV_PIP_LOCK:-.venv/.pip.lock}"
flock 9  # one installer at a time (parallel `make` runs share the venv)
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages into .venv (first run takes a few minutes)"
  $pip install -q --upgrade "pip<27"
  # torch first, pinned: 2.13.0 is a CPU build on this machine's local disk. Without it, anything that
  # depends on torch pulls a multi-GB CUDA build. constraints.txt keeps it pinned for later installs.
  $pip install -q torch==2.13.0
  for req in requirements/*.txt; do
    case "$req" in *constraints.txt|*.nodeps.txt) continue ;; esac
    $pip install -q -c requirements/constraints.txt -r "$req"
  done
  # Packages whose declared deps would pull tensorflow / a CUDA torch: installed without deps, their
  # real runtime deps are listed in the other requirement files.
  for req in requirements/*.nodeps.txt; do $pip install -q --no-deps -r "$req"; done
  $pip install -q --no-deps -e .
  rm -f .venv/.symmv-setup-*
  touch "$stamp"
fi

PYTHON=.venv/bin/python bash scripts/fetch_clips.sh .cache/clips >/dev/null || true
echo "setup: ok ($(.venv/bin/python -c 'import torch, prefect; print("torch", torch.__version__, "prefect", prefect.__version__)'))"
