#!/usr/bin/env bash
# Installs GIMP 3 (console + Python plug-in support) through the system package manager.
# Debian 13 and later: straight from the archive. Debian 12: from the trixie suite, pinned low so
# nothing else is upgraded unless GIMP needs it (it does upgrade libc; that is expected).
set -euo pipefail
if command -v gimp-console-3.0 >/dev/null 2>&1 && command -v Xvfb >/dev/null 2>&1 && /usr/bin/python3 -c 'import gi; gi.require_version("Gimp", "3.0"); from gi.repository import Gimp' >/dev/null 2>&1; then
  echo "GIMP 3 already installed: $(command -v gimp-console-3.0)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: no apt-get here; install GIMP 3 from https://www.gimp.org/downloads/ or your distribution" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
target=()
if [ "$codename" = "bookworm" ]; then
  echo "Debian 12 detected: adding the trixie suite at low pin priority for GIMP 3"
  if ! grep -rqs "trixie" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    $SUDO tee /etc/apt/sources.list.d/trixie-for-gimp.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  $SUDO tee /etc/apt/preferences.d/trixie-low-priority >/dev/null <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
  target=(-t trixie)
fi
$SUDO apt-get update -q
# python3-pip-whl / python3-setuptools-whl: without them `python3 -m venv` fails on trixie's Python.
# xvfb: a virtual display for the test of the interactive dialog and its preview.
$SUDO apt-get install -y -q --no-install-recommends "${target[@]}" \
  gimp python3 python3-gi gir1.2-gtk-3.0 python3-venv python3-pip-whl python3-setuptools-whl xvfb
gimp-console-3.0 --version
