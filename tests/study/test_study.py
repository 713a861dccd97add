"""The study: the Pareto front, kernels per op, bad options fail before any training, data loaded once (the
`convzoo study` command: tests/commands/test_study.py)."""

from __future__ import annotations

import pytest

from convzoo.ops.base import kernel_for
from convzoo.study import StudyConfig, StudyRow
from convzoo.study.report import pareto_front


def test_pareto_front_by_hand():
    rows = [
        StudyRow("a", "ok", test_acc=0.90, latency_ms=1.0),
        StudyRow("b", "ok", test_acc=0.95, latency_ms=2.0),
        StudyRow("c", "ok", test_acc=0.93, latency_ms=3.0),  # slower and less accurate than b
        StudyRow("d", "skipped: x"),
    ]
    assert pareto_front(rows) == ["a", "b"]


def test_kernel_for_ops_that_need_larger_kernels():
    assert kernel_for("conv") == 3
    assert kernel_for("dilated_reparam") == 5 and kernel_for("dilated_reparam", 7) == 7
    assert kernel_for("pix", 3) == 3  # pix needs 1, but a larger request is the caller's to make


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ops": ("conv", "shfit")}, r"unknown op 'shfit'; did you mean 'shift'"),
        ({"ops": ("conv", "conv")}, r"study: ops must be distinct"),
        ({"model": "resnet19"}, r"unknown model 'resnet19'"),
        ({"ops": ()}, r"study: needs at least one op"),
    ],
)
def test_bad_options_fail_before_training(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StudyConfig(**kwargs)


def test_the_study_measures_on_the_data_train_loaded_without_loading_it_again(tmp_path, monkeypatch):
    import convzoo.data
    import convzoo.data.base
    import convzoo.train.trainer
    from convzoo.study import run_study

    loads = []
    original = convzoo.data.base.load_dataset

    def counting(name, split="train", root=None, **options):
        loads.append((name, split))
        return original(name, split, root, **options)

    for module in (convzoo.data, convzoo.data.base, convzoo.train.trainer):
        monkeypatch.setattr(module, "load_dataset", counting)
    config = StudyConfig(ops=("conv",), epochs=1, out=str(tmp_path), repeats=3, progress=False)
    (row,), _ = run_study(config)
    assert row.status == "ok" and row.params > 0
    assert loads == [("digits", "train"), ("digits", "test")]
