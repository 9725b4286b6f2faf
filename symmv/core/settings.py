"""Where things are, defined once: the repository, the default dataset, the SymMV release, the soundfonts, the
shipped checkpoints and the benchmark results. Every default is relative to the repository (or, for
`--out`-like paths, to the working folder, as a command-line path is); an environment variable overrides each.

    SYMMV_DATA           the dataset `symmv.load` and the notebook read (default data/symmv-demo)
    SYMMV_RELEASE        a SymMV release checkout (default ../shared/data/symmv-release beside the repository)
    SYMMV_SOUNDFONT      the General MIDI soundfont the dataset's own renders use
    SYMMV_MUSIC_SOUNDFONT  the soundfont generated music is rendered with (a full piano first)
    XDG_CACHE_HOME       the user's cache (default ~/.cache): symmv/build (stage cache), symmv/prefect (local runs)
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATASET = Path("data/symmv-demo")  # what `make demo` builds; relative to the working folder, like --out
SHIPPED_CHECKPOINTS = REPO_ROOT / "models" / "checkpoints" / "cpu"
BENCH_RESULTS = REPO_ROOT / "bench" / "results"

# Debian's General MIDI soundfonts (scripts/setup.sh installs timgm6mb-soundfont and fluid-soundfont-gm).
SOUNDFONT_DIR = Path("/usr/share/sounds/sf2")
SOUNDFONTS = ("TimGM6mb.sf2", "MuseScore_General.sf2", "FluidR3_GM.sf2", "default-GM.sf2")
# Generated music is rendered for listening with a real piano first: FluidR3_GM has multi-sampled,
# velocity-layered pianos; the dataset's own renders (demo covers) keep SOUNDFONTS' order, so a build does
# not change with what else happens to be installed.
MUSIC_SOUNDFONTS = ("FluidR3_GM.sf2", "MuseScore_General.sf2", *SOUNDFONTS)


def user_cache() -> Path:
    """symmv's folder in the user's cache ($XDG_CACHE_HOME/symmv, else ~/.cache/symmv): the stage cache and
    Prefect's local database live there, so a command run in any folder writes nothing into it."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "symmv"


def dataset_root() -> Path:
    return Path(os.environ.get("SYMMV_DATA") or DEFAULT_DATASET)


def release_root() -> Path:
    """The SymMV release checkout: $SYMMV_RELEASE, else ../shared/data/symmv-release beside the repository
    (it may not exist: callers say what needs it)."""
    env = os.environ.get("SYMMV_RELEASE")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "symmv-release"


def soundfont(music: bool = False) -> Path | None:
    """The first soundfont that exists: the env override, then the candidates (None when there is none;
    symmv.io.media.music_soundfont falls back to the dataset's soundfont, $SYMMV_SOUNDFONT included)."""
    env = os.environ.get("SYMMV_MUSIC_SOUNDFONT" if music else "SYMMV_SOUNDFONT")
    names = MUSIC_SOUNDFONTS if music else SOUNDFONTS
    for candidate in ([Path(env)] if env else []) + [SOUNDFONT_DIR / n for n in names]:
        if candidate.is_file():
            return candidate
    return None
