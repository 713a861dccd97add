"""Rows and checkpoints between machines: a checkpoint packed on one machine reads back whole on another, and rank
0 of a multi-machine study (no shared disk) writes the rows and first-seed checkpoints the other ranks send."""

from __future__ import annotations

import pytest
import torch

from convzoo.study.folder import StudyFolder, settings_differences

TINY = {"blocks": (1, 1, 1), "widths": (8, 8, 8)}
DATA = {"name": "digits", "num_classes": 10, "channels": 1, "image_size": [8, 8]}


def _checkpoint(path, seed: int = 0):
    from convzoo.models import create_model
    from convzoo.train import save_checkpoint

    torch.manual_seed(seed)
    model = create_model("mixer_resnet20", num_classes=10, in_chans=1, op="conv", **TINY)
    architecture = {"model": "mixer_resnet20", "op": "conv", "num_classes": 10, "in_chans": 1,
                    "cfg": {"blocks": [1, 1, 1], "widths": [8, 8, 8]}}  # fmt: skip
    save_checkpoint(path, model, architecture, data=DATA, epoch=1, step=11)
    return model


def test_a_packed_checkpoint_reads_back_whole_on_another_machine(tmp_path):
    from convzoo.train import CheckpointError, build_from_checkpoint

    model = _checkpoint(tmp_path / "here" / "checkpoint")
    files = StudyFolder.pack_checkpoint(tmp_path / "here" / "checkpoint")
    assert set(files) >= {"checkpoint.json", "model.safetensors"}
    StudyFolder.unpack_checkpoint(files, tmp_path / "there" / "checkpoint")
    rebuilt, _ = build_from_checkpoint(tmp_path / "there" / "checkpoint")
    for (name, a), (_, b) in zip(model.state_dict().items(), rebuilt.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    altered = dict(files, **{"model.safetensors": files["model.safetensors"][:-8] + b"\0" * 8})
    StudyFolder.unpack_checkpoint(altered, tmp_path / "bad" / "checkpoint")
    with pytest.raises(CheckpointError, match="altered or truncated"):
        build_from_checkpoint(tmp_path / "bad" / "checkpoint")


class _Rank0Of2:
    """Rank 0 of two ranks on two machines: the other rank's answers to each gather come from ``theirs``."""

    world, rank = 2, 0

    def __init__(self, theirs: list) -> None:
        self.theirs = list(theirs)

    def broadcast(self, value):
        return value

    def gather(self, value):
        return [value, self.theirs.pop(0)]


def test_rank0_writes_the_rows_and_checkpoints_another_machine_sends(tmp_path):
    from convzoo.study import StudyConfig
    from convzoo.study.runner import _merge
    from convzoo.train import build_from_checkpoint

    config = StudyConfig(ops=("conv", "shift"), seeds=1, out=str(tmp_path / "rank0"), progress=False)
    folder = StudyFolder(config.out)
    mine = {"op": "conv", "seed": 0, "status": "ok", "test_acc": 0.5, "history": [], "train_s": 1.0}
    folder.write_row(mine)
    _checkpoint(folder.run_dir("conv", 0, 0) / "checkpoint")
    elsewhere = StudyFolder(tmp_path / "rank1")  # the other machine's disk
    theirs = {"op": "shift", "seed": 0, "status": "ok", "test_acc": 0.25, "history": [], "train_s": 2.0}
    model = _checkpoint(elsewhere.run_dir("shift", 0, 0) / "checkpoint", seed=1)
    packed = {"shift": StudyFolder.pack_checkpoint(elsewhere.run_dir("shift", 0, 0) / "checkpoint")}
    _merge(config, folder, _Rank0Of2([[theirs], packed]), [mine])
    assert folder.read_row("shift", 0) == theirs and folder.read_row("conv", 0) == mine
    rebuilt, checkpoint = build_from_checkpoint(folder.run_dir("shift", 0, 0) / "checkpoint")
    assert checkpoint.meta["data"]["image_size"] == [8, 8]
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), rebuilt.state_dict().values(), strict=True)
    )


def test_settings_differences_name_each_key():
    saved = {"model": "mixer_resnet20", "epochs": 4, "cfg": {"widths": [8, 8, 8]}}
    given = {"model": "mixer_resnet20", "epochs": 2, "cfg": {"widths": (8, 8, 8)}, "lr": 0.1}
    assert settings_differences(saved, given) == [
        "epochs: 4 in the folder, 2 given",
        "lr: None in the folder, 0.1 given",
    ]
