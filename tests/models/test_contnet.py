"""ConTNet (S4): the patch-wise STE against a per-patch loop, published counts, strides, op= and errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo.models import create_model
from convzoo.models.contnet import PatchTransformerEncoder
from convzoo.models.counting import count_params
from convzoo.ops.base import Op


def test_ste_equals_a_loop_over_patches():
    torch.manual_seed(0)
    ste = PatchTransformerEncoder(8, 12, 2, patch=2).double().eval()
    with torch.no_grad():
        ste.pe_h.normal_(), ste.pe_w.normal_()
    x = torch.randn(2, 8, 4, 6, dtype=torch.float64)
    expected = torch.empty_like(x)
    for a in range(2):
        for b in range(3):
            patch = x[:, :, 2 * a : 2 * a + 2, 2 * b : 2 * b + 2]  # (N, C, 2, 2)
            tokens = torch.stack([patch[:, :, r, s] for r in range(2) for s in range(2)], dim=1)  # (N, 4, C)
            rows = torch.tensor([r for r in range(2) for s in range(2)])
            cols = torch.tensor([s for r in range(2) for s in range(2)])
            pe = torch.cat([ste.pe_h[0, rows, 0], ste.pe_w[0, 0, cols]], dim=-1)  # (4, C): rows | columns
            t = tokens + pe
            t = F.layer_norm(t + ste.attn(t), (8,), ste.norm1.weight, ste.norm1.bias)
            t = F.layer_norm(t + ste.mlp(t), (8,), ste.norm2.weight, ste.norm2.bias)
            expected[:, :, 2 * a : 2 * a + 2, 2 * b : 2 * b + 2] = t.transpose(1, 2).reshape(2, 8, 2, 2)
    torch.testing.assert_close(ste(x), expected)
    with pytest.raises(ValueError, match=r"contnet: a 5×6 map does not split into 2×2 patches"):
        ste(torch.randn(1, 8, 5, 6, dtype=torch.float64))


def test_published_count_of_contnet_s_and_the_official_layout():
    with torch.device("meta"):
        model = create_model("contnet_s")
    assert abs(count_params(model) - 10.1e6) <= 0.005 * 10.1e6  # S4 README / Table 2: ConT-S 10.1M
    assert [(f.channels, f.reduction) for f in model.feature_info] == [(128, 8), (256, 16), (512, 32), (1024, 32)]
    last = model.stages[3][0]
    assert last.out_conv.kernel_size == (1, 1) and last.downsample.stride == (1, 1)  # stage 4 keeps 7×7
    assert model.stages[0][0].out_conv.stride == (2, 2)


def test_op_replaces_the_three_by_three_convs():
    model = create_model("contnet_ti", patch_sizes=((2, 2), (2, 2), (1, 1), (1, 1)), op="conv", num_classes=3)
    assert sum(isinstance(m, Op) for m in model.modules()) == 3  # stages 1–3; stage 4's conv is 1×1
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_config_errors():
    with pytest.raises(ValueError, match=r"contnet: heads \(1, 2\) must have one entry per stage \(4\)"):
        create_model("contnet_s", heads=(1, 2))
