"""Model stage: load an audiocraft MusicGen checkpoint directory, safely.

A checkpoint directory holds ``state_dict.bin`` (the LM) and
``compression_state_dict.bin`` (EnCodec), each a ``torch.save`` of
``{"best_state": ..., "xp.cfg": <YAML>, "version": ..., "exported": True}`` as
audiocraft's ``export_lm``/``export_encodec`` write them. Loading proceeds in
numbered steps, each of which raises :class:`ModelError`:

1. each file's SHA-256 equals the caller's expected digest (before unpickling);
2. each file is unpickled with ``torch.load(weights_only=True)``, from the same
   open file that was hashed;
3. the models are built from ``xp.cfg`` by audiocraft's own builders in float32,
   with the T5 text conditioner replaced by :class:`NullTextConditioner`, which
   keeps the conditioner's ``output_proj`` (so the state dict still loads
   *strictly*, no key excluded) but never loads T5;
4. the LM has 48 layers and every hooked tensor (spec section 4).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch
from audiocraft.modules.conditioners import TextConditioner
from torch import nn

from .._internal.hashing import sha256_path, sha256_stream
from ..errors import ModelError
from .space import MODEL_FILES, SignatureConfig

__all__ = ["EXCLUDED_KEYS", "LoadedModel", "NullTextConditioner", "hook_tensors", "load_model", "sha256_model_files"]

#: State-dict keys allowed to be absent or unexpected. Empty: the stand-in
#: conditioner carries ``output_proj`` like T5Conditioner, and T5's own weights
#: were never part of a MusicGen checkpoint (audiocraft keeps them out of it).
EXCLUDED_KEYS: frozenset[str] = frozenset()

#: Text conditioners whose null output is zeros (spec 3.2).
_TEXT_CONDITIONERS = ("t5",)

_BUILD_LOCK = threading.Lock()


class NullTextConditioner(TextConditioner):
    """Stand-in for audiocraft's ``T5Conditioner`` under null conditioning.

    Same constructor and same parameters (``output_proj``: Linear(T5 dim, output
    dim)); T5 itself is never instantiated. For an absent description the real
    conditioner returns ``embeds * mask`` with mask zero: zeros ``[B, 1, dim]``.
    A text conditioner for audiocraft (so that its condition provider hands it the
    descriptions), it accepts only absent ones.
    """

    MODELS_DIMS = {"t5-small": 512, "t5-base": 768, "t5-large": 1024, "t5-3b": 1024, "t5-11b": 1024,
                   "google/flan-t5-small": 512, "google/flan-t5-base": 768, "google/flan-t5-large": 1024,
                   "google/flan-t5-xl": 2048, "google/flan-t5-xxl": 4096}

    def __init__(self, name: str, output_dim: int, finetune: bool = False, device: str = "cpu",
                 autocast_dtype: str | None = "float32", word_dropout: float = 0.0,
                 normalize_text: bool = False) -> None:
        if name not in self.MODELS_DIMS:
            raise ModelError(f"unknown T5 model {name!r} in the checkpoint's conditioner config")
        super().__init__(self.MODELS_DIMS[name], output_dim)  # output_proj: Linear(T5 dim, output dim)
        self.name = name

    def null_condition(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Zeros ``[B, 1, output_dim]`` and mask zeros ``[B, 1]``."""
        return (torch.zeros(batch, 1, self.output_dim, device=device),
                torch.zeros(batch, 1, dtype=torch.long, device=device))

    def tokenize(self, texts: list[str | None]) -> _NullTokens:
        """Only absent descriptions (``None``) are accepted: their condition is :meth:`null_condition`.

        This lets audiocraft's own sampling (``lm.generate``) run under null conditioning, as the
        ground-truth benchmark does; any real text needs T5, which lumina-audit never loads.
        """
        if not isinstance(texts, list) or any(t is not None for t in texts):
            raise ModelError("text conditioning needs T5, which lumina-audit never loads")
        return _NullTokens(len(texts))

    def forward(self, inputs: Any) -> Any:
        if isinstance(inputs, _NullTokens):
            return self.null_condition(inputs.batch, self.output_proj.weight.device)
        raise ModelError("text conditioning needs T5, which lumina-audit never loads")


@dataclass(frozen=True)
class _NullTokens:
    """What :meth:`NullTextConditioner.tokenize` returns for a batch of absent descriptions."""

    batch: int


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A checked, float32, eval-mode MusicGen: ``lm`` and ``compression``.

    ``hooked[channel]`` lists the 36 hooked parameters of channel ``"P"`` or
    ``"M"`` in spec order (layer, then tensor); only these require grad.
    """

    directory: Path
    digests: Mapping[str, str]
    lm: Any
    compression: Any
    device: torch.device
    null_condition: Mapping[str, tuple[torch.Tensor, torch.Tensor]]
    hooked: Mapping[str, tuple[nn.Parameter, ...]]
    hooked_names: Mapping[str, tuple[str, ...]]
    num_layers: int


def sha256_model_files(directory: str | os.PathLike[str]) -> dict[str, str]:
    """SHA-256 of each checkpoint file (for pinning digests in a manifest)."""
    out = {}
    for name in MODEL_FILES:
        path = Path(directory) / name
        try:
            out[name] = sha256_path(path)
        except OSError as exc:
            raise ModelError(f"{path}: cannot read ({exc.strerror})") from None
    return out


def _open_checked(path: Path, expected: str) -> BinaryIO:
    """Step 1: open the file and hash it; the caller unpickles from this same handle."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise ModelError(f"{path}: no such checkpoint file") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot open ({exc.strerror})") from None
    actual = sha256_stream(f)
    if actual != expected:
        f.close()
        raise ModelError(f"{path.name}: SHA-256 {actual} differs from the expected {expected}",
                         hint="the checkpoint is not the one pinned; nothing was unpickled")
    f.seek(0)
    return f


def _unpickle(f: BinaryIO, name: str) -> dict[str, Any]:
    """Step 2: weights-only unpickling of an already verified open file."""
    before = os.fstat(f.fileno())
    try:
        pkg = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure is a refusal
        raise ModelError(f"{name}: not a loadable weights-only checkpoint ({type(exc).__name__})") from None
    after = os.fstat(f.fileno())
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise ModelError(f"{name}: changed while it was being loaded")
    if not isinstance(pkg, dict):
        raise ModelError(f"{name}: not an audiocraft checkpoint (not a dict)")
    if "pretrained" in pkg:
        raise ModelError(f"{name}: refers to the hub model {pkg['pretrained']!r}; "
                         "only self-contained checkpoints are supported")
    for key in ("best_state", "xp.cfg"):
        if key not in pkg:
            raise ModelError(f"{name}: not an audiocraft checkpoint (no {key!r})")
    return pkg


def _config(pkg: Mapping[str, Any], name: str, device: torch.device) -> Any:
    from omegaconf import OmegaConf

    try:
        cfg = OmegaConf.create(pkg["xp.cfg"])
    except Exception as exc:
        raise ModelError(f"{name}: xp.cfg is not a valid config ({type(exc).__name__})") from None
    OmegaConf.set_struct(cfg, False)
    cfg.device = str(device)
    cfg.dtype = "float32"
    # The same keys audiocraft's own loader removes before building.
    for dotted in ("conditioners.self_wav.chroma_stem.cache_path", "conditioners.args.merge_text_conditions_p",
                   "conditioners.args.drop_desc_p"):
        *parents, leaf = dotted.split(".")
        node = cfg
        for part in parents:
            node = node.get(part) if node is not None else None
        if node is not None and leaf in node:
            del node[leaf]
    return cfg


def _load_state(module: nn.Module, state: Mapping[str, torch.Tensor], name: str) -> None:
    result = module.load_state_dict(dict(state), strict=False)
    missing = sorted(set(result.missing_keys) - EXCLUDED_KEYS)
    unexpected = sorted(set(result.unexpected_keys) - EXCLUDED_KEYS)
    if missing:
        raise ModelError(f"{name}: checkpoint lacks tensor(s) {', '.join(missing[:5])}"
                         + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    if unexpected:
        raise ModelError(f"{name}: checkpoint has unexpected tensor(s) {', '.join(unexpected[:5])}")


def _build(compression_pkg: Mapping[str, Any], lm_pkg: Mapping[str, Any], device: torch.device) -> tuple[Any, Any]:
    from unittest import mock

    from audiocraft.models import builders

    try:
        ccfg = _config(compression_pkg, "compression_state_dict.bin", device)
        lcfg = _config(lm_pkg, "state_dict.bin", device)
        for cond, ccond in (lcfg.get("conditioners") or {}).items():
            if ccond.get("model") not in _TEXT_CONDITIONERS:
                raise ModelError(f"state_dict.bin: conditioner {cond!r} of type {ccond.get('model')!r} "
                                 "has no defined null condition; only T5 text conditioners are supported")
        with _BUILD_LOCK, mock.patch.object(builders, "T5Conditioner", NullTextConditioner):
            compression = builders.get_compression_model(ccfg)
            lm = builders.get_lm_model(lcfg)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"cannot build the model from xp.cfg ({type(exc).__name__}: {exc})") from None
    _load_state(compression, compression_pkg["best_state"], "compression_state_dict.bin")
    _load_state(lm, lm_pkg["best_state"], "state_dict.bin")
    return compression.float().eval(), lm.float().eval()


Hooked = tuple[dict[str, tuple[nn.Parameter, ...]], dict[str, tuple[str, ...]]]


def hook_tensors(lm: Any, config: SignatureConfig) -> Hooked:
    """Step 4: find the hooked tensors; only they require grad."""
    for p in lm.parameters():
        p.requires_grad_(False)
    params: dict[str, tuple[nn.Parameter, ...]] = {}
    names: dict[str, tuple[str, ...]] = {}
    for channel, layers in (("P", config.layers_p), ("M", config.layers_m)):
        found, found_names = [], []
        for layer in layers:
            for tensor in config.tensors:
                full = f"transformer.layers.{layer}.{tensor}"
                try:
                    param = lm.get_parameter(full)
                except AttributeError:
                    raise ModelError(f"state_dict.bin: model has no hooked tensor {full}") from None
                param.requires_grad_(True)
                found.append(param)
                found_names.append(full)
        params[channel], names[channel] = tuple(found), tuple(found_names)
    return params, names


def load_model(directory: str | os.PathLike[str], expected: Mapping[str, str], device: torch.device,
               config: SignatureConfig | None = None) -> LoadedModel:
    """Load and check a checkpoint directory (steps 1-4 of the module doc).

    ``expected`` maps each of ``state_dict.bin`` and ``compression_state_dict.bin``
    to its lowercase hex SHA-256.
    """
    config = config or SignatureConfig()
    root = Path(directory)
    if not root.is_dir():
        raise ModelError(f"{root}: model directory not found")
    missing = [n for n in MODEL_FILES if n not in expected]
    if missing:
        raise ModelError(f"no expected SHA-256 for {', '.join(missing)}")
    with ExitStack() as stack:
        # Every digest is checked before anything is unpickled.
        handles = {n: stack.enter_context(_open_checked(root / n, expected[n])) for n in MODEL_FILES}
        pkgs = {n: _unpickle(f, n) for n, f in handles.items()}
    compression_pkg, lm_pkg = pkgs["compression_state_dict.bin"], pkgs["state_dict.bin"]
    compression, lm = _build(compression_pkg, lm_pkg, device)
    num_layers = len(lm.transformer.layers)
    if num_layers != 48:
        raise ModelError(f"state_dict.bin: the LM has {num_layers} layers; lumina-gradstats-v1 needs 48")
    if compression.num_codebooks != 4 or lm.num_codebooks != 4:
        raise ModelError("the checkpoint must model 4 codebooks")
    if int(compression.sample_rate) != config.sample_rate:
        raise ModelError(f"EnCodec runs at {compression.sample_rate} Hz; the signature config needs "
                         f"{config.sample_rate} Hz")
    compression, lm = compression.to(device), lm.to(device)
    for p in compression.parameters():
        p.requires_grad_(False)
    hooked, names = hook_tensors(lm, config)
    null = {name: cond.null_condition(1, device) for name, cond in lm.condition_provider.conditioners.items()}
    return LoadedModel(
        directory=root, digests={k: expected[k] for k in MODEL_FILES}, lm=lm,
        compression=compression, device=device, null_condition=null, hooked=hooked,
        hooked_names=names, num_layers=num_layers,
    )
