"""DSCLoRA fine-tuning (S29) through the sr task: adapters over a trained base's frozen kernels, and the paper's
loss L1 + L1 to the teacher + spatial affinity of the SPAN blocks, against the terms computed by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo.models import create_model
from convzoo.train import TrainConfig, build_from_checkpoint, train
from convzoo.train.checkpoint import save_checkpoint
from convzoo.train.sr_lora import dsclora_loss
from convzoo.train.task import get_task

SMALL = {"width": 8, "blocks": 2}


def _checkpoint(folder, model_name, cfg, scale=2, residual=False, seed=0):
    """A trained-looking sr checkpoint: the network with random (not default) weights."""
    torch.manual_seed(seed)
    task = get_task("sr")
    architecture = {"task": "sr", "model": model_name, "scale": scale, "cfg": cfg} | (
        {"residual": True} if residual else {}
    )
    model = task.create(architecture)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_checkpoint(folder, model, architecture)
    return str(folder), model.eval()


def _student(options, cfg=SMALL):
    config = TrainConfig(task="sr", model="dsclora", cfg=cfg, options={"scale": 2, **options}, progress=False)
    task = get_task("sr")
    architecture = task.architecture(config, None)
    return task, config, task.create(architecture)


def test_a_dsclora_student_starts_equal_to_its_base_and_trains_only_its_adapters(tmp_path):
    path, base = _checkpoint(tmp_path / "base", "span", SMALL)
    _, _, student = _student({"base": path})
    x = torch.rand(2, 3, 10, 9)
    with torch.no_grad():
        torch.testing.assert_close(student.eval()(x), base(x), rtol=0, atol=0)
    trainable = {n for n, p in student.named_parameters() if p.requires_grad}
    assert trainable and all(n.rsplit(".", 1)[-1] in ("lora_A", "lora_B") for n in trainable)


def test_a_residual_base_fills_a_residual_student(tmp_path):
    path, base = _checkpoint(tmp_path / "base", "span", SMALL, residual=True)
    _, _, student = _student({"base": path, "residual": True})
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(student.eval()(x), base(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("base", "options", "message"),
    [
        ({"cfg": {"width": 16, "blocks": 2}}, {}, r"\(16, 3, 3, 3\).*\(8, 3, 3, 3\)"),
        ({"cfg": SMALL, "scale": 4}, {}, "scale=4.*scale=2"),
        ({"cfg": SMALL, "residual": True}, {}, "residual=True.*residual=False"),
        ({"cfg": {"width": 8, "blocks": 3}}, {}, "lacks.*blocks.2"),
    ],
)
def test_a_base_that_does_not_fit_is_refused_naming_the_difference(tmp_path, base, options, message):
    path, _ = _checkpoint(tmp_path / "base", "span", **base)
    with pytest.raises(ValueError, match=message):
        _student({"base": path, **options})


def test_a_missing_base_or_teacher_names_the_path(tmp_path):
    for role in ("base", "teacher"):
        with pytest.raises(FileNotFoundError, match=f"no {role} checkpoint at .*nowhere"):
            _student({role: str(tmp_path / "nowhere")})


def test_a_base_with_adapters_is_refused(tmp_path):
    path, _ = _checkpoint(tmp_path / "base", "dsclora", SMALL)
    with pytest.raises(ValueError, match="LoRA adapters"):
        _student({"base": path})


def _affinity(features):
    flat = features.flatten(2)  # (N, C, HW)
    flat = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return torch.einsum("ncp,ncq->npq", flat, flat)  # cosine of every pixel pair


def test_the_loss_is_l1_plus_teacher_l1_plus_block_affinities_by_hand(tmp_path):
    _, teacher = _checkpoint(tmp_path / "teacher", "span", {"width": 16, "blocks": 2}, seed=1)
    student = create_model("dsclora", scale=2, **SMALL)
    with torch.no_grad():
        for name, p in student.named_parameters():
            if name.endswith("lora_B"):
                p.normal_(0, 0.1)  # adapters away from their zero start, so they shape the output
    lr, hr = torch.rand(2, 3, 6, 7), torch.rand(2, 3, 12, 14)
    loss, terms = dsclora_loss(student, teacher, lr, hr, teacher_weight=0.7, affinity_weight=2.5)

    with torch.no_grad():
        out_t, feats_t = teacher(lr, return_features=True)
        out_s, feats_s = student(lr, return_features=True)
    affinity = sum((_affinity(s) - _affinity(t)).abs().mean() for s, t in zip(feats_s, feats_t, strict=True)) / 2
    expected = F.l1_loss(out_s, hr) + 0.7 * F.l1_loss(out_s, out_t) + 2.5 * affinity
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert terms["affinity"] == pytest.approx(affinity.item(), rel=1e-5)

    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert student.blocks[0].c1.lora_B.grad.abs().sum() > 0


def test_distillation_needs_span_blocks_in_both(tmp_path):
    _, teacher = _checkpoint(tmp_path / "teacher", "espcn", {})
    student = create_model("dsclora", scale=2, **SMALL)
    with pytest.raises(ValueError, match="SPAN blocks"):
        dsclora_loss(student, teacher, torch.rand(1, 3, 6, 6), torch.rand(1, 3, 12, 12), 1.0, 1.0)


def test_a_distilled_run_trains_and_its_checkpoint_rebuilds_without_base_or_teacher(tmp_path):
    base, _ = _checkpoint(tmp_path / "base", "span", SMALL)
    teacher, _ = _checkpoint(tmp_path / "teacher", "span", {"width": 16, "blocks": 2}, seed=1)
    config = TrainConfig(
        task="sr", model="dsclora", cfg=SMALL, epochs=1, batch_size=8, progress=False, out=str(tmp_path / "run"),
        options={"scale": 2, "patch": 32, "sampler": "uniform", "samples": 16, "base": base, "teacher": teacher},
    )  # fmt: skip
    result = train(config)
    record = result.history[-1]
    assert record["train_affinity"] > 0 and record["train_teacher_l1"] > 0 and "test_psnr_gain" in record
    rebuilt, _ = build_from_checkpoint(result.checkpoint)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), result.model.eval()(x))
