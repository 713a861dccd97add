"""Every registered sequence op: causal (the future never reaches the past), and streaming equals offline."""

from __future__ import annotations

import pytest
import torch

from convzoo.registry import OPS
from convzoo.testing import make_contract_op, randomize_batchnorm_

SEQUENCE_OPS = [e.name for e in OPS.entries() if e.kind == "sequence"]
STREAMING_OPS = [name for name in SEQUENCE_OPS if callable(getattr(OPS.get(name).obj, "step", None))]


def _op(name):
    return randomize_batchnorm_(make_contract_op(name, dim=1)).double().eval()


def test_the_sequence_ops_are_registered():
    assert {"long_conv", "tcn"} <= set(SEQUENCE_OPS) and "tcn" in STREAMING_OPS


@pytest.mark.parametrize("name", SEQUENCE_OPS)
def test_causal(name):
    op = _op(name)
    x = torch.randn(2, op.in_channels, 24, dtype=torch.float64)
    with torch.no_grad():
        base = op(x)
        for t in (0, 9, 23):
            perturbed = x.clone()
            perturbed[..., t + 1 :] += 100 * torch.randn_like(perturbed[..., t + 1 :])
            # exact up to FFT rounding: a leak of the large perturbation would be far above 1e-11
            torch.testing.assert_close(op(perturbed)[..., : t + 1], base[..., : t + 1], rtol=0, atol=1e-11)


@pytest.mark.parametrize("name", STREAMING_OPS)
def test_streaming_equals_offline(name):
    op = _op(name)
    x = torch.randn(2, op.in_channels, 20, dtype=torch.float64)
    with torch.no_grad():
        state, outputs = op.init_state(2), []
        for t in range(x.shape[-1]):
            y, state = op.step(x[..., t], state)
            outputs.append(y)
        torch.testing.assert_close(torch.stack(outputs, dim=-1), op(x), rtol=1e-12, atol=1e-12)
