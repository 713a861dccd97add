"""optimize on every registered op and model: equivalent, and never a form measured slower than the default.

The chosen form is the fastest of the forms timed side by side in one run, the model as given among them, so
``optimize`` cannot return something it measured slower than what it was given. These tests hold that (and the
equivalence) on every registry entry at a small shape; they assert no wall-clock time.
"""

from __future__ import annotations

import pytest
import torch

from convzoo import MODELS, OPS, create_model
from convzoo.deploy.optimize import optimize_with_report
from convzoo.testing import make_contract_op, randomize_batchnorm_

GRID_KINDS = ("grid", "attention", "sequence")


def _check(model, x):
    optimized, plan = optimize_with_report(model, x, repeats=3)
    assert plan.whole_chosen in plan.whole and "as trained" in plan.whole
    assert plan.whole[plan.whole_chosen] <= plan.whole["as trained"], plan.markdown()
    with torch.no_grad():
        expected = model(x)
        got = optimized(x)
    assert (got - expected).abs().max() <= 1e-4 * max(expected.abs().max().item(), 1e-12), plan.markdown()


@pytest.mark.parametrize("name", [e.name for e in OPS.entries() if e.kind in GRID_KINDS])
def test_every_op(name):
    entry = OPS.get(name)
    dim = 2 if 2 in entry.dims else entry.dims[0]
    op = randomize_batchnorm_(make_contract_op(name, dim=dim)).eval()
    size = 32 if entry.kind == "sequence" else 8
    _check(op, torch.randn(2, op.in_channels, *([size] * dim)))


@pytest.mark.slow
@pytest.mark.parametrize("name", [e.name for e in MODELS.entries() if e.kind == "classify"])
def test_every_model(name):
    info = MODELS.get(name).info
    torch.manual_seed(0)
    model = randomize_batchnorm_(create_model(name, num_classes=10, **info.test_cfg)).eval()
    size = info.test_size
    _check(model, torch.randn(2, info.input_size[0], *([size] * (len(info.input_size) - 1))))
