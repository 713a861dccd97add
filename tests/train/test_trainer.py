"""The trainer: learns digits, resumes exactly, checkpoints name their architecture, DDP ranks agree."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from convzoo.models import create_model
from convzoo.train import CheckpointError, TrainConfig, build_from_checkpoint, read_checkpoint, train
from convzoo.train.checkpoint import load_weights
from convzoo.train.trainer import warmup_cosine, warmup_steps_decay

SMALL = {"layers": (1, 1, 1)}  # a ResNet-8 with the CIFAR ResNet layout, for fast runs


def test_two_epochs_of_conv_on_digits_beat_80_percent(tmp_path):
    result = train(TrainConfig(model="resnet20", op="conv", epochs=2, out=str(tmp_path), progress=False))
    assert result.test_accuracy > 0.80, result.history
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    model, checkpoint = build_from_checkpoint(tmp_path / "checkpoint")
    assert checkpoint.meta["epoch"] == 2 and checkpoint.architecture["op"] == "conv"
    assert checkpoint.meta["metrics"]["test_acc"] == pytest.approx(result.test_accuracy)


def test_resume_equals_an_uninterrupted_run(tmp_path):
    common = {"model": "resnet20", "cfg": SMALL, "progress": False, "ema_decay": 0.9}
    straight = train(TrainConfig(epochs=3, out=str(tmp_path / "a"), **common))
    interrupted = train(TrainConfig(epochs=3, out=str(tmp_path / "b"), **common), on_epoch_end=lambda record: False)
    assert len(interrupted.history) == 1
    resumed = train(TrainConfig(epochs=3, out=str(tmp_path / "b"), **common), resume=True)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"{name} differs after resuming"
    assert [h["test_acc"] for h in straight.history] == [h["test_acc"] for h in resumed.history]
    assert read_checkpoint(tmp_path / "b" / "checkpoint").meta["step"] == straight.history[-1]["step"]


def test_resume_refuses_a_different_run(tmp_path):
    train(TrainConfig(model="resnet20", cfg=SMALL, epochs=1, out=str(tmp_path), progress=False))
    with pytest.raises(ValueError, match=r"cannot resume .* it was trained with op=None, not 'shift'"):
        train(TrainConfig(model="resnet20", op="shift", cfg=SMALL, epochs=2, out=str(tmp_path)), resume=True)
    with pytest.raises(ValueError, match=r"already finished 1 epochs"):
        train(TrainConfig(model="resnet20", cfg=SMALL, epochs=1, out=str(tmp_path), progress=False), resume=True)


def test_checkpoint_into_the_wrong_architecture_names_both(tmp_path):
    train(TrainConfig(model="resnet20", cfg=SMALL, epochs=1, out=str(tmp_path), progress=False))
    other = create_model("resnet56", num_classes=10, in_chans=1)
    wanted = {"model": "resnet56", "op": None, "num_classes": 10, "in_chans": 1, "cfg": {}}
    with pytest.raises(
        CheckpointError, match=r"holds resnet20, 10 classes, 1 input channels, but the model is resnet56"
    ):
        load_weights(other, tmp_path / "checkpoint", wanted)


def test_missing_or_malformed_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match=r"is not a convzoo checkpoint: expected a folder with checkpoint.json"):
        read_checkpoint(tmp_path)
    (tmp_path / "checkpoint.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"checkpoint.json' is not valid JSON"):
        read_checkpoint(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, r"train: epochs must be ≥ 1, got 0"),
        ({"optimizer": "adam"}, r"train: optimizer must be one of sgd, adamw, got 'adam'"),
        ({"label_smoothing": 1.0}, r"train: label_smoothing must be in \[0, 1\), got 1.0"),
        ({"ema_decay": 1.5}, r"train: ema_decay must be in \(0, 1\), got 1.5"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_warmup_cosine_schedule():
    factor = warmup_cosine(total_steps=110, warmup_steps=10)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.5) and factor(110) == pytest.approx(0.0)


def test_adamw_bf16_clip_run(tmp_path):
    config = TrainConfig(
        model="resnet20", cfg=SMALL, epochs=1, optimizer="adamw", bf16=True, grad_clip=1.0, progress=False
    )
    result = train(config)
    assert 0.0 <= result.test_accuracy <= 1.0 and len(result.history) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(out, dump, *extra, timeout=600):
    worker = Path(__file__).with_name("ddp_worker.py")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(_free_port()), str(worker), str(out), str(dump), *extra,
    ]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def test_two_gloo_processes_end_with_identical_weights_and_one_checkpoint(tmp_path):
    out, dump = tmp_path / "run", tmp_path / "dump"
    dump.mkdir()
    result = _torchrun(out, dump)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = load_file(str(dump / "rank0.safetensors")), load_file(str(dump / "rank1.safetensors"))
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), f"{name} differs between ranks"
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2  # written by rank 0 only
    assert sorted(p.name for p in (out / "checkpoint").iterdir()) == [
        "checkpoint.json",
        "model.safetensors",
        "state.safetensors",
    ]


@pytest.mark.slow
def test_a_rank_dying_mid_epoch_ends_the_run_clearly_and_resume_finishes_it(tmp_path):
    import time

    straight_dump, dump = tmp_path / "straight-dump", tmp_path / "dump"
    straight_dump.mkdir()
    dump.mkdir()
    assert _torchrun(tmp_path / "straight", straight_dump).returncode == 0
    died = _torchrun(tmp_path / "run", dump, "--die-at", "30")  # mid second epoch (22 batches of 32 per rank)
    seconds = time.time() - float((dump / "died_at").read_text())
    assert died.returncode != 0
    assert "ChildFailedError" in died.stderr and "exitcode  : 17" in died.stderr, died.stderr[-3000:]
    # no hang: _torchrun's timeout fails the test if rank 0 is left waiting in an all-reduce; the figure is reported
    print(f"torchrun exited {seconds:.1f} s after rank 1 died mid-epoch")
    assert read_checkpoint(tmp_path / "run" / "checkpoint").meta["epoch"] == 1
    resumed = _torchrun(tmp_path / "run", dump, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = load_file(str(straight_dump / "rank0.safetensors"))
    for rank in (0, 1):
        got = load_file(str(dump / f"rank{rank}.safetensors"))
        for name, value in expected.items():
            assert torch.equal(value, got[name]), f"rank {rank}: {name} differs from the uninterrupted run"


def test_ctrl_c_mid_epoch_saves_a_checkpoint_that_resumes_exactly(tmp_path, monkeypatch):
    import os
    import signal

    from convzoo.train.tasks.classify import Classify

    common = {"model": "resnet20", "cfg": SMALL, "progress": False, "batch_size": 256}
    straight = train(TrainConfig(epochs=2, out=str(tmp_path / "a"), **common))
    real_create = Classify.create
    calls = {"train": 0}

    def create_with_a_ctrl_c(self, architecture):
        model = real_create(self, architecture)

        def press_ctrl_c(module, inputs, output):
            if module.training:
                calls["train"] += 1
                if calls["train"] == 7:  # mid second epoch (digits: 6 batches of 256 per epoch)
                    os.kill(os.getpid(), signal.SIGINT)

        model.register_forward_hook(press_ctrl_c)
        return model

    monkeypatch.setattr(Classify, "create", create_with_a_ctrl_c)
    interrupted = train(TrainConfig(epochs=2, out=str(tmp_path / "b"), **common))
    monkeypatch.setattr(Classify, "create", real_create)
    assert interrupted.interrupted and len(interrupted.history) == 1
    saved = read_checkpoint(tmp_path / "b" / "checkpoint").meta
    assert saved["epoch"] == 1 and saved["metrics"]["partial_epoch"]["batches"] == 1
    resumed = train(TrainConfig(epochs=2, out=str(tmp_path / "b"), **common), resume=True)
    assert not resumed.interrupted
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"{name} differs after resuming"
    for key in ("test_acc", "train_loss", "train_acc", "step"):
        assert [h[key] for h in straight.history] == [h[key] for h in resumed.history], key


def test_a_model_with_a_training_schedule_is_told_the_progress_every_step():
    from convzoo.train.tasks.classify import Classify

    seen = []
    real_create = Classify.create

    def create(self, architecture):
        model = real_create(self, architecture)
        model.set_training_progress = seen.append
        return model

    Classify.create = create
    try:
        train(TrainConfig(model="resnet20", cfg=SMALL, epochs=2, batch_size=512, progress=False))
    finally:
        Classify.create = real_create
    steps = len(seen)
    assert steps == 2 * 3 and seen == [step / steps for step in range(steps)]  # digits: 1,347 / 512 → 3 batches


def test_step_schedule_drops_the_rate_at_the_given_fractions(tmp_path):
    factor = warmup_steps_decay(total_steps=100, warmup_steps=4, fractions=(0.5, 0.75), gamma=0.1)
    assert [factor(s) for s in (0, 3, 4, 49)] == pytest.approx([0.25, 1.0, 1.0, 1.0])
    assert [factor(s) for s in (50, 74, 75, 99)] == pytest.approx([0.1, 0.1, 0.01, 0.01])
    config = TrainConfig(
        model="resnet20", cfg=SMALL, epochs=4, lr=0.2, warmup_epochs=0, schedule="step", lr_steps=(0.5,), progress=False
    )
    result = train(config)  # the rate each epoch ended with: 0.2 before half the steps, 0.02 from there on
    assert [h["lr"] for h in result.history] == pytest.approx([0.2, 0.02, 0.02, 0.02])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schedule": "linear"}, r"schedule must be one of cosine, step, got 'linear'"),
        ({"schedule": "step"}, r"schedule='step' needs lr_steps"),
        ({"schedule": "step", "lr_steps": (0.75, 0.5)}, r"lr_steps must be increasing fractions .* got \(0.75, 0.5\)"),
        ({"schedule": "step", "lr_steps": (1.5,)}, r"lr_steps must be increasing fractions"),
        ({"lr_steps": (0.5,)}, r"lr_steps is for schedule='step', not 'cosine'"),
        ({"schedule": "step", "lr_steps": (0.5,), "lr_gamma": 2.0}, r"lr_gamma must be in \(0, 1\), got 2.0"),
        ({"options": {"augment": "mixup"}}, r"augment option must be one of 'none', 'crop-flip', got 'mixup'"),
    ],
)
def test_bad_schedules_and_augmentations_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_augmented_step_scheduled_run_resumes_exactly(tmp_path):
    common = {
        "model": "resnet20", "cfg": SMALL, "progress": False, "schedule": "step", "lr_steps": (0.5,),
        "nesterov": False, "options": {"augment": "crop-flip", "pad": 2}, "data": "digits",
    }  # fmt: skip
    straight = train(TrainConfig(epochs=2, out=str(tmp_path / "a"), **common))
    train(TrainConfig(epochs=2, out=str(tmp_path / "b"), **common), on_epoch_end=lambda record: False)
    resumed = train(TrainConfig(epochs=2, out=str(tmp_path / "b"), **common), resume=True)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"{name} differs after resuming"
    plain = train(TrainConfig(epochs=1, **{**common, "options": {}}))
    assert plain.history[0]["train_loss"] != straight.history[0]["train_loss"]  # the augmentation was applied


def test_a_classify_checkpoint_saved_before_its_options_existed_resumes(tmp_path):
    train(TrainConfig(model="resnet20", cfg=SMALL, epochs=1, out=str(tmp_path), progress=False))
    meta_path = tmp_path / "checkpoint" / "checkpoint.json"
    meta = json.loads(meta_path.read_text())
    meta["train_config"]["options"] = {}  # as written before classify had options
    meta_path.write_text(json.dumps(meta))
    resumed = train(TrainConfig(model="resnet20", cfg=SMALL, epochs=2, out=str(tmp_path), progress=False), resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]


def test_ema_warms_up_its_decay_as_tensorflow_does():
    from torch.optim.swa_utils import AveragedModel

    from convzoo.train.trainer import ema_with_warmup

    model = torch.nn.Sequential(torch.nn.Linear(2, 1, bias=False), torch.nn.BatchNorm1d(1))
    ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(0.99), use_buffers=True)
    expected = None
    for step in range(40):
        with torch.no_grad():
            model[0].weight.fill_(float(step))
        model.train()(torch.randn(4, 2))  # the BatchNorm counts a batch
        ema.update_parameters(model)
        if expected is None:
            expected = float(step)  # the first update copies the weights
        else:
            decay = min(0.99, (1 + step) / (10 + step))  # by hand: n updates averaged before this one = step
            expected = decay * expected + (1 - decay) * step
    assert ema.module[0].weight.flatten().tolist() == pytest.approx([expected, expected], rel=1e-6)
    assert ema.module[1].num_batches_tracked.item() == 40
