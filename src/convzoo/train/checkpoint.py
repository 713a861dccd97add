"""Checkpoints: weights as safetensors, training state as safetensors, and a JSON description.

A checkpoint is a folder::

    checkpoint.json      architecture (model, op, classes, channels, config overrides), data, epoch, step
    model.safetensors    the model's weights (shared tensors stored once)
    state.safetensors    optimizer tensors, EMA weights and RNG state, for --resume

Each file is written atomically, the JSON last, so a folder whose JSON exists is complete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from convzoo.core.files import atomic_write, atomic_write_json

__all__ = [
    "CheckpointError",
    "Checkpoint",
    "save_checkpoint",
    "read_checkpoint",
    "build_from_checkpoint",
    "load_weights",
]

FORMAT = "convzoo-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, malformed, or of another architecture than the model given."""


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    meta: dict[str, Any]

    @property
    def architecture(self) -> dict[str, Any]:
        return self.meta["architecture"]

    def describe(self) -> str:
        arch = self.architecture
        op = f", op={arch['op']}" if arch.get("op") else ""
        return f"{arch['model']}{op}, {arch['num_classes']} classes, {arch['in_chans']} input channels"


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, plain = {}, {"param_groups": state["param_groups"], "state": {}}
    for index, values in state["state"].items():
        plain["state"][str(index)] = {}
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer/{index}/{key}"] = value.detach().contiguous().clone()
            else:
                plain["state"][str(index)][key] = value
    return tensors, plain


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in plain["state"].items()}
    for name, value in tensors.items():
        if name.startswith("optimizer/"):
            _, index, key = name.split("/", 2)
            state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": plain["param_groups"]}


def save_checkpoint(
    folder: str | Path,
    model: nn.Module,
    architecture: dict[str, Any],
    *,
    data: dict[str, Any] | None = None,
    epoch: int = 0,
    step: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    ema: nn.Module | None = None,
    metrics: dict[str, Any] | None = None,
    train_config: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder for ``model``; ``architecture`` must let ``build_from_checkpoint`` rebuild it."""
    from convzoo import __version__

    folder = Path(folder)
    atomic_write(folder / "model.safetensors", lambda tmp: save_model(model, str(tmp)))
    tensors: dict[str, torch.Tensor] = {"rng/torch": torch.get_rng_state()}
    plain_optimizer = None
    if optimizer is not None:
        opt_tensors, plain_optimizer = _flatten_optimizer(optimizer.state_dict())
        tensors.update(opt_tensors)
    if ema is not None:
        tensors.update({f"ema/{k}": v.detach().contiguous().clone() for k, v in ema.state_dict().items()})
    atomic_write(folder / "state.safetensors", lambda tmp: save_file(tensors, str(tmp)))
    meta = {
        "format": FORMAT,
        "convzoo": __version__,
        "architecture": architecture,
        "data": data or {},
        "epoch": epoch,
        "step": step,
        "metrics": metrics or {},
        "train_config": train_config or {},
        "optimizer": plain_optimizer,
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    atomic_write_json(folder / "checkpoint.json", meta)
    return folder


def read_checkpoint(path: str | Path) -> Checkpoint:
    """The description of a checkpoint folder (or of its ``checkpoint.json``)."""
    path = Path(path)
    folder = path.parent if path.name == "checkpoint.json" else path
    meta_path = folder / "checkpoint.json"
    if not meta_path.is_file():
        raise CheckpointError(
            f"{str(folder)!r} is not a convzoo checkpoint: expected a folder with checkpoint.json, "
            "model.safetensors and state.safetensors"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{str(meta_path)!r} is not valid JSON ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "architecture" not in meta:
        raise CheckpointError(f"{str(meta_path)!r} is not a {FORMAT} description")
    if not (folder / "model.safetensors").is_file():
        raise CheckpointError(f"{str(folder)!r} has no model.safetensors")
    return Checkpoint(folder, meta)


def build_from_checkpoint(path: str | Path) -> tuple[nn.Module, Checkpoint]:
    """Rebuild the checkpoint's architecture and load its weights; returns the model in eval mode."""
    from convzoo.models import create_model

    checkpoint = read_checkpoint(path)
    arch = checkpoint.architecture
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in arch.get("cfg", {}).items()}  # JSON lists
    model = create_model(
        arch["model"], num_classes=arch["num_classes"], in_chans=arch["in_chans"], op=arch.get("op"), **cfg
    )
    load_weights(model, checkpoint, arch)
    return model.eval(), checkpoint


def load_weights(model: nn.Module, checkpoint: Checkpoint | str | Path, architecture: dict[str, Any]) -> None:
    """Load the checkpoint's weights into ``model`` built as ``architecture``; a mismatch names both."""
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = read_checkpoint(checkpoint)
    saved = checkpoint.architecture
    keys = ("model", "op", "num_classes", "in_chans", "cfg")
    if any(saved.get(k) != architecture.get(k) for k in keys):
        given = Checkpoint(checkpoint.path, {"architecture": architecture}).describe()
        raise CheckpointError(
            f"checkpoint {str(checkpoint.path)!r} holds {checkpoint.describe()}, but the model is {given}"
        )
    try:
        missing, unexpected = load_model(model, str(checkpoint.path / "model.safetensors"), strict=False)
    except RuntimeError as error:
        raise CheckpointError(f"checkpoint {str(checkpoint.path)!r} does not fit the model: {error}") from None
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {str(checkpoint.path)!r} does not fit the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )


def load_training_state(
    checkpoint: Checkpoint, optimizer: torch.optim.Optimizer | None, scheduler: Any, ema: nn.Module | None
) -> None:
    """Restore optimizer, scheduler, EMA weights and the torch RNG from ``state.safetensors``."""
    tensors = load_file(str(checkpoint.path / "state.safetensors"))
    if optimizer is not None and checkpoint.meta.get("optimizer") is not None:
        optimizer.load_state_dict(_unflatten_optimizer(tensors, checkpoint.meta["optimizer"]))
    if scheduler is not None and checkpoint.meta.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint.meta["scheduler"])
    if ema is not None:
        ema_state = {k.removeprefix("ema/"): v for k, v in tensors.items() if k.startswith("ema/")}
        if ema_state:
            ema.load_state_dict(ema_state)
    torch.set_rng_state(tensors["rng/torch"])
