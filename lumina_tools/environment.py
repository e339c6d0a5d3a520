"""The machine a benchmark runs on: Debian packages, the git state, versions, resident memory."""

from __future__ import annotations

import ctypes
import gc
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lumina_tools import ROOT, ToolError

__all__ = [
    "SOUNDFONT_PACKAGES",
    "dpkg_version",
    "ensure_debian",
    "git_state",
    "proc_status",
    "reset_rss_peak",
    "versions",
]

#: What renders the seeded scores (``lumina_audit._internal.scores.render``): package -> a file it installs.
SOUNDFONT_PACKAGES: dict[str, Path] = {"fluidsynth": Path("/usr/bin/fluidsynth"),
                                       "fluid-soundfont-gm": Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")}


def ensure_debian(packages: Mapping[str, Path]) -> list[str]:
    """Install with apt the packages whose marker path is missing (root only); return those installed."""
    missing = [name for name, marker in packages.items() if not marker.exists()]
    if not missing:
        return []
    if os.geteuid() != 0:
        raise ToolError(f"need the Debian package(s) {' '.join(missing)}: sudo apt-get install -y {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["nice", "-n", "10", "apt-get", "install", "-y", "--no-install-recommends", *missing]
    if subprocess.run(cmd, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(cmd, env=env, check=True)
    still = [name for name in missing if not packages[name].exists()]
    if still:
        raise ToolError(f"apt-get installed {' '.join(missing)} but {still} is still missing")
    return missing


def dpkg_version(package: str) -> str:
    """The installed version of a Debian package, or ``unknown``."""
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def git_state(files: bool = False) -> dict[str, Any]:
    """The commit of the working tree and how many tracked or untracked files differ from it.

    With ``files``, also ``changed`` (their paths) and ``dirty``.
    """
    done = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False)
    changed = [line[3:] for line in done.stdout.splitlines()] if done.returncode == 0 else []
    state: dict[str, Any] = {"commit": _git("rev-parse", "HEAD") or None, "changed_files": len(changed)}
    if files:
        state |= {"changed": changed, "dirty": bool(changed)}
    return state


def versions() -> dict[str, str]:
    """Versions that decide a measurement's bits: Python, torch, torchaudio, audiocraft, numpy."""
    import platform

    import audiocraft
    import numpy
    import torch
    import torchaudio

    return {"python": platform.python_version(), "torch": torch.__version__, "torchaudio": torchaudio.__version__,
            "audiocraft": audiocraft.__version__, "numpy": numpy.__version__}


def proc_status(key: str, default: int | None = None) -> int:
    """A ``/proc/self/status`` figure in bytes (``VmRSS``, ``VmHWM``); ``default`` when it has none (else an error)."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    if default is None:
        raise ToolError(f"/proc/self/status has no {key}")
    return default


def reset_rss_peak(trim: bool = False, strict: bool = True) -> int:
    """Reset the kernel's high-water mark of this process's resident memory; the resident bytes now.

    Garbage is collected first and, with ``trim``, freed heap goes back to the kernel (``malloc_trim``).
    ``VmHWM`` is then the peak since this call. Where the mark cannot be reset (not Linux, not allowed),
    ``strict`` refuses; otherwise the peak stays the process's peak so far.
    """
    gc.collect()
    if trim:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError as exc:
        if strict:
            raise ToolError(f"cannot reset the peak resident memory (/proc/self/clear_refs: {exc.strerror})") from None
    return proc_status("VmRSS", None if strict else 0)
