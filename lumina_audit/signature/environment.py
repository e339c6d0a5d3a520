"""What a run records about the machine and software it ran on (spec 9)."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from .pins import Pins

__all__ = [
    "ATTRIBUTION_PACKAGES", "BIT_PACKAGES", "PACKAGES", "bit_relevant", "bit_versions", "describe", "differences",
]

#: Packages whose versions can change bits or behaviour.
PACKAGES = ("torch", "torchaudio", "audiocraft", "numpy", "h5py", "soundfile", "lir", "lumina-audit")
#: The packages whose versions decide a signature's bits (``lumina-audit --version`` names them).
BIT_PACKAGES = ("torch", "torchaudio", "audiocraft", "numpy")
#: The reference of lumina-attribution-v2's figures (``lir``, whose definitions they follow and are tested against).
ATTRIBUTION_PACKAGES = ("lir",)


def bit_versions(packages: tuple[str, ...] = BIT_PACKAGES, python: bool = True) -> dict[str, str]:
    """Python's version and those of ``packages``, read from package metadata (torch is not imported)."""
    versions = {"Python": platform.python_version()} if python else {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _cpu() -> dict[str, Any]:
    model, flags = platform.processor() or "unknown", ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("unknown", "x86_64", ""):
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = value.strip()
    except OSError:
        pass
    simd = sorted(f for f in flags.split() if f.startswith(("avx", "fma", "sse4", "amx", "f16c")))
    return {"model": model, "machine": platform.machine(), "simd_flags": simd, "logical_cpus": os.cpu_count()}


def describe(pins: Pins) -> dict[str, Any]:
    """Versions, CPU, GPU and the pins in force (torch must be importable)."""
    import torch

    versions = {"python": platform.python_version(), "implementation": sys.implementation.name}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        import soundfile

        versions["libsndfile"] = str(getattr(soundfile, "__libsndfile_version__", "unknown"))
    except ImportError:
        pass
    gpu: dict[str, Any] | None = None
    if pins.device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = {"name": props.name, "capability": f"{props.major}.{props.minor}",
               "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),  # type: ignore[no-untyped-call]
               "driver": _nvidia_driver()}
    return {
        "versions": versions,
        "platform": platform.platform(),
        "cpu": _cpu(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "pins": pins.as_json(),
    }


def bit_relevant(env: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a :func:`describe` that can change a signature's bits, for comparing two processes.

    Library versions (all of :data:`PACKAGES` but :data:`ATTRIBUTION_PACKAGES`, which compute no
    signature; Python and libsndfile), torch's CPU capability and thread count, the CPU architecture
    and SIMD flags, the GPU (name, capability, driver, CUDA, cuDNN) and the pins. Not the CPU model
    name, the kernel or the number of CPUs.
    """
    cpu = env.get("cpu") or {}
    versions = env.get("versions")
    if isinstance(versions, Mapping):
        versions = {k: v for k, v in versions.items() if k not in ATTRIBUTION_PACKAGES}
    return {"versions": versions, "torch_cpu_capability": env.get("torch_cpu_capability"),
            "torch_threads": env.get("torch_threads"),
            "cpu": {"machine": cpu.get("machine"), "simd_flags": cpu.get("simd_flags")},
            "gpu": env.get("gpu"), "pins": env.get("pins")}


def _nvidia_driver() -> str:
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8") as f:
            return f.readline().strip()
    except OSError:
        return "unknown"


def differences(recorded: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Human lines ``key: recorded -> current`` for every leaf that differs."""
    out: list[str] = []
    for key in sorted(set(recorded) | set(current)):
        a, b = recorded.get(key), current.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(differences(a, b, name + "."))
        elif a != b:
            out.append(f"{name}: {a!r} -> {b!r}")
    return out
