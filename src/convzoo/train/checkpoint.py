"""Checkpoints: weights as safetensors, training state as safetensors, and a JSON description, as one unit.

A checkpoint is a folder::

    checkpoint.json      architecture (model, op, classes, channels, config overrides), data, epoch, step,
                         and the SHA-256 of both tensor files
    model.safetensors    the model's weights (shared tensors stored once); its header records the step
    state.safetensors    optimizer tensors, EMA weights and RNG state, for --resume; its header records the step

Saving never overwrites a checkpoint in place. Each save writes a new version folder beside the checkpoint
(``checkpoint.d/step-000000120-…/``), flushes every file and the folder to disk, and then moves the
``checkpoint`` link to it in one atomic rename; the previous versions are kept up to ``keep`` and then removed.
An interrupted save (a kill, a power loss) therefore leaves the previous checkpoint whole, never a mixture of two
steps. Reading resolves the link once, so all three parts come from one version; a part from another step, a file
whose hash differs from the one recorded, or a truncated file is refused with a :class:`CheckpointError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from convzoo.core.files import atomic_write, atomic_write_json, fsync_folder

__all__ = [
    "CheckpointError",
    "Checkpoint",
    "save_checkpoint",
    "read_checkpoint",
    "build_from_checkpoint",
    "load_weights",
]

FORMAT = "convzoo-checkpoint/1"
KEEP = 2  # checkpoint versions kept on disk: the current one and the one before it
PARTS = ("model.safetensors", "state.safetensors")


class CheckpointError(ValueError):
    """A checkpoint that is missing, malformed, or of another architecture than the model given."""


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    meta: dict[str, Any]

    @property
    def architecture(self) -> dict[str, Any]:
        return self.meta["architecture"]

    @property
    def task(self) -> str:
        """The task the model was trained for (checkpoints of classifiers may not name it)."""
        return self.architecture.get("task", "classify")

    def describe(self) -> str:
        from convzoo.train.task import get_task

        return get_task(self.task).describe(self.architecture)


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions_folder(link: Path) -> Path:
    """Where the versions behind the checkpoint ``link`` live: ``<link>.d`` beside it."""
    return link.with_name(link.name + ".d")


def _publish(link: Path, version: Path) -> None:
    """Point ``link`` at ``version`` in one rename (a relative symlink, so the run folder can move)."""
    if link.is_dir() and not link.is_symlink():  # a checkpoint folder written in place by an older convzoo
        os.replace(link, version.parent / f"legacy-{uuid.uuid4().hex[:8]}")
    temporary = link.with_name(f".{link.name}.{uuid.uuid4().hex[:8]}.link")
    os.symlink(os.path.relpath(version, link.parent), temporary)
    try:
        os.replace(temporary, link)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_folder(link.parent)


def _prune(link: Path, keep: int) -> None:
    """Remove versions beyond the newest ``keep`` (never the one ``link`` points at, never a save in progress)."""
    current = link.resolve()
    finished = sorted(
        (p for p in versions_folder(link).iterdir() if p.is_dir() and (p / "checkpoint.json").is_file()),
        key=lambda p: p.stat().st_mtime_ns,
    )
    for old in finished[:-keep] if keep > 0 else finished:
        if old.resolve() != current:
            shutil.rmtree(old, ignore_errors=True)
    for partial in versions_folder(link).iterdir():  # saves killed before they were published
        if partial.name.startswith(".") and partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)


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
    keep: int = KEEP,
) -> Path:
    """Write a checkpoint of ``model`` and point ``folder`` at it; ``architecture`` must let ``build_from_checkpoint``
    rebuild the model. Returns ``folder`` (a link to the new version; see the module docstring)."""
    from convzoo import __version__

    link = Path(folder)
    versions = versions_folder(link)
    versions.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:09d}-{uuid.uuid4().hex[:8]}"
    building = versions / f".{name}"  # hidden until complete: a killed save leaves only a hidden folder
    building.mkdir()
    stamp = {"step": str(step), "epoch": str(epoch)}
    atomic_write(building / "model.safetensors", lambda tmp: save_model(model, str(tmp), metadata=stamp))
    tensors: dict[str, torch.Tensor] = {"rng/torch": torch.get_rng_state()}
    plain_optimizer = None
    if optimizer is not None:
        opt_tensors, plain_optimizer = _flatten_optimizer(optimizer.state_dict())
        tensors.update(opt_tensors)
    if ema is not None:
        tensors.update({f"ema/{k}": v.detach().contiguous().clone() for k, v in ema.state_dict().items()})
    atomic_write(building / "state.safetensors", lambda tmp: save_file(tensors, str(tmp), metadata=stamp))
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
        "sha256": {part: _sha256(building / part) for part in PARTS},
    }
    atomic_write_json(building / "checkpoint.json", meta)
    version = versions / name
    os.replace(building, version)
    fsync_folder(versions)
    _publish(link, version)
    _prune(link, keep)
    return link


def _stamped_step(path: Path) -> str | None:
    """The step recorded in a safetensors file's header; ``CheckpointError`` when the file cannot be read."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return (handle.metadata() or {}).get("step")
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{str(path)!r} is not a readable safetensors file ({error})") from None


def read_checkpoint(path: str | Path) -> Checkpoint:
    """The description of a checkpoint folder (or of its ``checkpoint.json``), its parts checked to agree.

    The link is resolved once, so the returned checkpoint names one version whatever a concurrent save does.
    """
    path = Path(path)
    link = path.parent if path.name == "checkpoint.json" else path
    folder = link.resolve() if link.exists() else link
    meta_path = folder / "checkpoint.json"
    if not meta_path.is_file():
        raise CheckpointError(
            f"{str(link)!r} is not a convzoo checkpoint: expected a folder with checkpoint.json, "
            "model.safetensors and state.safetensors"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{str(meta_path)!r} is not valid JSON ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "architecture" not in meta:
        raise CheckpointError(f"{str(meta_path)!r} is not a {FORMAT} description")
    if not (folder / "model.safetensors").is_file():
        raise CheckpointError(f"{str(link)!r} has no model.safetensors")
    _check_parts(folder, meta)
    return Checkpoint(folder, meta)


def _check_parts(folder: Path, meta: dict[str, Any]) -> None:
    """Every tensor file present has the step and (where recorded) the SHA-256 the description names."""
    hashes = meta.get("sha256") or {}
    for part in PARTS:
        file = folder / part
        if not file.is_file():
            if part in hashes:
                raise CheckpointError(f"{str(folder)!r} has no {part}")
            continue
        step = _stamped_step(file)
        if step is not None and step != str(meta.get("step")):
            raise CheckpointError(
                f"{str(file)!r} is from step {step} but checkpoint.json describes step {meta.get('step')}: "
                "the parts of this checkpoint come from different saves"
            )
        if part in hashes and _sha256(file) != hashes[part]:
            raise CheckpointError(f"{str(file)!r} is altered or truncated: its SHA-256 differs from the recorded one")


def build_from_checkpoint(path: str | Path) -> tuple[nn.Module, Checkpoint]:
    """Rebuild the checkpoint's architecture (through its task) and load its weights; returns the model in eval
    mode."""
    from convzoo.train.task import get_task

    checkpoint = read_checkpoint(path)
    arch = checkpoint.architecture
    model = get_task(checkpoint.task).create(arch)
    load_weights(model, checkpoint, arch)
    return model.eval(), checkpoint


def load_weights(model: nn.Module, checkpoint: Checkpoint | str | Path, architecture: dict[str, Any]) -> None:
    """Load the checkpoint's weights into ``model`` built as ``architecture``; a mismatch names both."""
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = read_checkpoint(checkpoint)
    saved = checkpoint.architecture
    if saved != architecture:
        given = Checkpoint(checkpoint.path, {"architecture": architecture}).describe()
        raise CheckpointError(
            f"checkpoint {str(checkpoint.path)!r} holds {checkpoint.describe()}, but the model is {given}"
        )
    try:
        missing, unexpected = load_model(model, str(checkpoint.path / "model.safetensors"), strict=False)
    except (RuntimeError, SafetensorError) as error:
        # torch lists each mismatch on its own line: one line, so the CLI's error stays one line
        lines = [line.strip().rstrip(".") for line in str(error).splitlines() if line.strip()]
        reason = "; ".join(lines[1:] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines)
        raise CheckpointError(f"checkpoint {str(checkpoint.path)!r} does not fit the model: {reason}") from None
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {str(checkpoint.path)!r} does not fit the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )


def load_training_state(
    checkpoint: Checkpoint, optimizer: torch.optim.Optimizer | None, scheduler: Any, ema: nn.Module | None
) -> None:
    """Restore optimizer, scheduler, EMA weights and the torch RNG from ``state.safetensors``."""
    try:
        tensors = load_file(str(checkpoint.path / "state.safetensors"))
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{str(checkpoint.path)!r} has no readable state.safetensors ({error})") from None
    if optimizer is not None and checkpoint.meta.get("optimizer") is not None:
        optimizer.load_state_dict(_unflatten_optimizer(tensors, checkpoint.meta["optimizer"]))
    if scheduler is not None and checkpoint.meta.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint.meta["scheduler"])
    if ema is not None:
        ema_state = {k.removeprefix("ema/"): v for k, v in tensors.items() if k.startswith("ema/")}
        if ema_state:
            ema.load_state_dict(ema_state)
    torch.set_rng_state(tensors["rng/torch"])
