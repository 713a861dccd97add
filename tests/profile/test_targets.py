"""resolve_target(): what `convzoo profile TARGET` measures, built without the command line."""

from __future__ import annotations

import pytest
from torch import nn

from convzoo.ops.shift import SpatialShiftConv
from convzoo.profile.targets import DEFAULT_OP_SIDE, resolve_target


def test_an_op_is_built_on_its_input_with_options():
    module, shape = resolve_target("op:cp", input_shape=(1, 8, 6, 6), channels=4, kernel_size=5, options={"rank": 2})
    assert shape == (1, 8, 6, 6) and module.in_channels == 8 and module.out_channels == 4 and module.rank == 2
    module, shape = resolve_target("shift")  # a bare op name
    assert isinstance(module, SpatialShiftConv) and shape == (1, 64, DEFAULT_OP_SIDE, DEFAULT_OP_SIDE)


def test_a_model_takes_its_registered_input_size_and_an_op():
    module, shape = resolve_target("resnet20", op="shift")
    assert shape == (1, 3, 32, 32) and any(isinstance(m, SpatialShiftConv) for m in module.modules())
    assert resolve_target("model:resnet20", input_shape=(2, 3, 16, 16))[1] == (2, 3, 16, 16)


def test_a_factory_is_called(tmp_path, monkeypatch):
    (tmp_path / "my_nets.py").write_text("import torch\n\ndef build():\n    return torch.nn.Conv2d(2, 3, 1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module, shape = resolve_target("my_nets:build", input_shape=[1, 2, 4, 4])
    assert isinstance(module, nn.Conv2d) and shape == (1, 2, 4, 4)


@pytest.mark.parametrize(
    ("target", "kwargs", "error", "message"),
    [
        ("resnt18", {}, ValueError, r"unknown target 'resnt18'; did you mean 'resnet18'.*; a target is a registered"),
        ("op:shift", {"op": "conv"}, ValueError, r"applies to model targets; op:shift is an op"),
        ("resnet20", {"options": {"rank": 2}}, ValueError, r"apply to op targets; 'resnet20' is a model"),
        ("os:getcwd", {"input_shape": (1, 2)}, TypeError, r"expected a factory returning an nn.Module, got str"),
        ("os:nothing_here", {"input_shape": (1, 2)}, ValueError, r"module 'os' has no attribute 'nothing_here'"),
    ],
)
def test_bad_targets(target, kwargs, error, message):
    with pytest.raises(error, match=message):
        resolve_target(target, **kwargs)
