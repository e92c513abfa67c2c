#!/usr/bin/env bash
# Install the system packages the mini corpus needs (TTS engines, sox, Debian's free text).
# Needs a Debian-like system and root or sudo; says so clearly otherwise.
set -euo pipefail
packages=(sox libsox-fmt-base espeak-ng flite festival festvox-kallpc16k wordnet-base fortunes-min)
missing=()
for cmd in sox espeak-ng flite text2wave; do command -v "$cmd" >/dev/null || missing+=("$cmd"); done
[ -d /usr/share/wordnet ] || missing+=(wordnet-base)
[ -f /usr/share/games/fortunes/fortunes ] || missing+=(fortunes-min)
[ -d /usr/share/festival/voices/english/kal_diphone ] || missing+=(festvox-kallpc16k)
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"; exit 0
fi
echo "system packages missing: ${missing[*]}"
if ! command -v apt-get >/dev/null; then
  echo "ERROR: this is not a Debian-like system (no apt-get). Install by hand: ${packages[*]}" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then sudo=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"
else
  echo "ERROR: installing system packages needs root. Run: sudo apt-get install -y ${packages[*]}" >&2
  exit 1
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "system packages: installed ${packages[*]}"
