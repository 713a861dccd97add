"""A checkpoint is one unit: new versions beside the old, one atomic switch, parts that must agree."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from torch import nn

from convzoo.train.checkpoint import (
    CheckpointError,
    load_training_state,
    load_weights,
    read_checkpoint,
    save_checkpoint,
    versions_folder,
)

ARCH = {"model": "tiny", "op": None, "num_classes": 3, "in_chans": 2, "cfg": {}}


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _save(link, model, step, **kwargs):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, model[0].in_features)).sum().backward()
    optimizer.step()
    return save_checkpoint(link, model, ARCH, epoch=step, step=step, optimizer=optimizer, **kwargs)


def test_each_save_is_a_new_version_and_old_ones_are_pruned(tmp_path):
    link = tmp_path / "checkpoint"
    for step in (1, 2, 3, 4):
        _save(link, _model(step), step)
    assert link.is_symlink() and read_checkpoint(link).meta["step"] == 4
    versions = sorted(p.name for p in versions_folder(link).iterdir())
    assert len(versions) == 2 and versions[-1].startswith("step-000000004")
    assert not os.path.isabs(os.readlink(link))  # relative: the run folder can move
    moved = tmp_path.rename(tmp_path.with_name(tmp_path.name + "-moved"))
    assert read_checkpoint(moved / "checkpoint").meta["step"] == 4


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        link = _save(tmp_path / "checkpoint", _model(0), 1)
    finally:
        os.umask(old)
    for part in ("model.safetensors", "state.safetensors", "checkpoint.json"):
        assert (link / part).stat().st_mode & 0o777 == 0o644, part


def test_a_part_from_another_step_is_refused(tmp_path):
    link = _save(tmp_path / "a", _model(0), 5)
    other = _save(tmp_path / "b", _model(1), 6)
    target = link.resolve()
    (target / "model.safetensors").unlink()
    (target / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(
        CheckpointError, match=r"model.safetensors.* is from step 6 but checkpoint.json describes step 5"
    ):
        read_checkpoint(link)


@pytest.mark.parametrize("part", ["model.safetensors", "state.safetensors"])
def test_truncated_or_altered_files_are_refused(tmp_path, part):
    link = _save(tmp_path / "checkpoint", _model(0), 3)
    path = link.resolve() / part
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"not a readable safetensors file|altered or truncated"):
        read_checkpoint(link)
    flipped = bytearray(data)
    flipped[-1] ^= 0xFF  # a tensor byte: the header still parses
    path.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match=r"altered or truncated: its SHA-256 differs"):
        read_checkpoint(link)


def test_altered_json_is_refused(tmp_path):
    link = _save(tmp_path / "checkpoint", _model(0), 3)
    meta_path = link.resolve() / "checkpoint.json"
    meta_path.write_text(meta_path.read_text()[:-40])
    with pytest.raises(CheckpointError, match=r"is not valid JSON"):
        read_checkpoint(link)
    meta_path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CheckpointError, match=r"is not valid JSON"):
        read_checkpoint(link)


def test_a_checkpoint_written_in_place_by_an_older_version_is_moved_aside(tmp_path):
    link = tmp_path / "checkpoint"
    link.mkdir()
    (link / "checkpoint.json").write_text("{}")
    _save(link, _model(0), 1)
    assert link.is_symlink() and any(p.name.startswith("legacy-") for p in versions_folder(link).iterdir())


_WRITER = textwrap.dedent(
    """
    import sys, torch
    from torch import nn
    from convzoo.train.checkpoint import save_checkpoint
    arch = {"model": "tiny", "op": None, "num_classes": 3, "in_chans": 2, "cfg": {}}
    link = sys.argv[1]
    step = int(sys.argv[2])
    print("ready", flush=True)
    while True:
        step += 1
        torch.manual_seed(step)
        model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 3))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        model(torch.randn(2, 64)).sum().backward()
        optimizer.step()
        save_checkpoint(link, model, arch, epoch=step, step=step, optimizer=optimizer)
    """
)


def _writer_model(step: int) -> nn.Module:
    torch.manual_seed(step)  # the same model the writer builds for this step
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 3))


def _kill_while_saving(link, kills: int, seed: int = 0) -> list[int]:
    """Start a process that saves checkpoints in a loop, SIGKILL it at random moments; return the steps read."""
    rng = random.Random(seed)
    steps = []
    start = 0
    for _ in range(kills):
        process = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(link), str(start)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.02, 0.4))
        process.send_signal(signal.SIGKILL)
        process.wait()
        checkpoint = read_checkpoint(link)  # the last complete save: its parts agree (checked when read)
        step = checkpoint.meta["step"]
        model = _writer_model(step)
        expected = {k: v.clone() for k, v in model.state_dict().items()}
        load_weights(model, checkpoint, ARCH)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        load_training_state(checkpoint, optimizer, None, None)
        # the weights are that step's: one SGD step from its own seeded init, so close to it but not equal
        for key, value in model.state_dict().items():
            assert not torch.equal(expected[key], value) or key.endswith("bias")
            assert (expected[key] - value).abs().max() < 1.0, key
        assert json.loads((checkpoint.path / "checkpoint.json").read_text())["step"] == step
        steps.append(step)
        start = step
    return steps


def test_sigkill_during_saves_always_leaves_the_last_complete_checkpoint(tmp_path):
    link = tmp_path / "checkpoint"
    _save(link, _writer_model(0), 0)
    steps = _kill_while_saving(link, kills=8)
    assert steps == sorted(steps)


@pytest.mark.slow
def test_fifty_sigkills_during_saves(tmp_path):
    link = tmp_path / "checkpoint"
    _save(link, _writer_model(0), 0)
    steps = _kill_while_saving(link, kills=50, seed=1)
    assert len(steps) == 50 and steps == sorted(steps)


def test_weights_of_other_shapes_are_refused_on_one_line_naming_each_mismatch(tmp_path):
    save_checkpoint(tmp_path / "ckpt", nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), ARCH)
    narrower = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    with pytest.raises(CheckpointError) as caught:
        load_weights(narrower, tmp_path / "ckpt", ARCH)
    message = str(caught.value)
    assert "\n" not in message and "does not fit the model: size mismatch for 0.weight" in message
    assert "torch.Size([8, 4])" in message and "torch.Size([5, 4])" in message and "2.weight" in message
