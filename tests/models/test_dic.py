"""DiC (S37) and DiCo (S63): official parameter counts, the blocks against hand-written references, the
sparse-skip wiring, conditioning and the identity at initialisation."""

import pytest
import torch
import torch.nn.functional as F

from convzoo.models import create_model
from convzoo.models.dic import DiCBlock
from convzoo.models.dico import DiCoBlock
from convzoo.registry import MODELS

DIFFUSION = [e.name for e in MODELS.entries() if e.kind == "diffusion"]


def test_the_diffusion_families_are_registered():
    assert {"dic_s", "dic_b", "dic_xl", "dic_h", "dico_s", "dico_b", "dico_l", "dico_xl", "dico_h"} <= set(DIFFUSION)


@pytest.mark.parametrize("name", DIFFUSION)
def test_parameter_count_is_the_official_builds(name):
    info = MODELS.get(name).info
    with torch.device("meta"):
        model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == info.params
    assert "official" in info.params_source


@pytest.mark.parametrize("name", DIFFUSION)
def test_predicts_noise_of_the_input_shape(name):
    torch.manual_seed(0)
    info = MODELS.get(name).info
    model = create_model(name, in_channels=1, classes=10, learn_sigma=False, **info.test_cfg)
    x = torch.randn(2, 1, 16, 16)
    out = model(x, torch.tensor([3, 900]), torch.tensor([1, 10]))  # label 10 is the null class
    assert out.shape == (2, 1, 16, 16)
    sigma = create_model(name, in_channels=3, classes=5, learn_sigma=True, **info.test_cfg)
    assert sigma(torch.randn(1, 3, 16, 16), torch.tensor([5]), torch.tensor([2])).shape == (1, 6, 16, 16)


def test_dic_block_equals_a_hand_written_reference():
    torch.manual_seed(0)
    block = DiCBlock(8, 16, groups=32, min_channels=4).double()
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x, c = torch.randn(2, 8, 6, 6, dtype=torch.float64), torch.randn(2, 16, dtype=torch.float64)
    # reference: GN (8 // 4 = 2 groups) → GELU → conv; SiLU → linear → gate/scale/shift; GN (4 groups) ...
    h = F.conv2d(F.gelu(F.group_norm(x, 2, block.norm0.weight, block.norm0.bias, 1e-5)), block.conv0.weight, None, 1, 1)
    h = h + block.conv0.bias.view(1, -1, 1, 1)
    params = F.silu(c) @ block.affine[1].weight.T + block.affine[1].bias  # (2, 48)
    gate, scale, shift = params[:, :16], params[:, 16:32], params[:, 32:]
    normed = F.group_norm(h, 4, block.norm1.weight, block.norm1.bias, 1e-5)
    h = F.gelu(normed * (1 + scale[:, :, None, None]) + shift[:, :, None, None])
    h = F.conv2d(h, block.conv1.weight, block.conv1.bias, 1, 1)
    expected = gate[:, :, None, None] * h + F.conv2d(x, block.skip.weight, block.skip.bias)
    torch.testing.assert_close(block(x, c), expected, rtol=1e-12, atol=1e-12)


def test_dic_block_with_a_closed_gate_is_its_shortcut():
    block = DiCBlock(8, 8, groups=32, min_channels=4)
    with torch.no_grad():
        block.affine[1].weight[:8].zero_()  # the gate rows
        block.affine[1].bias[:8].zero_()
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(block(x, torch.randn(2, 8)), x)


def test_dic_skips_are_sparse():
    """With skip_stride 3 and 6 blocks a stage, 2 of 6 encoder blocks send a skip and 2 of 6 decoder blocks
    concatenate one (their input is wider); with stride 1 every block does."""
    model = create_model("dic_s", hidden_size=8)
    for stage in model.decoder:
        widened = [b.conv0.in_channels != b.conv0.out_channels for b in stage]
        assert widened == [True, False, False, True, False, False]
    dense = create_model("dic_s", hidden_size=8, skip_stride=1)
    assert all(b.conv0.in_channels != b.conv0.out_channels for stage in dense.decoder for b in stage)


def test_dic_stage_specific_embeddings_have_the_stage_widths():
    model = create_model("dic_s", hidden_size=8)
    assert [e.table.embedding_dim for e in model.y_embedders] == [8, 16, 32]
    assert [e.mlp[2].out_features for e in model.t_embedders] == [8, 16, 32]
    assert model.stage_levels == [0, 1, 2, 1, 0] and model.head_level == 0


def test_dic_rejects_a_bad_config():
    with pytest.raises(ValueError, match="symmetric"):
        create_model("dic_s", depth=(1, 2, 3, 4, 5))
    with pytest.raises(ValueError, match="same odd length"):
        create_model("dic_s", depth=(1, 1, 1, 1))


def test_dico_block_equals_a_hand_written_reference():
    torch.manual_seed(0)
    block = DiCoBlock(6, 2.0).double()
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x, c = torch.randn(2, 6, 5, 5, dtype=torch.float64), torch.randn(2, 6, dtype=torch.float64)
    p = F.silu(c) @ block.ada[1].weight.T + block.ada[1].bias
    s1, k1, g1, s2, k2, g2 = (p[:, i * 6 : (i + 1) * 6, None, None] for i in range(6))

    def layer_norm(z):  # over channels, no affine
        mean = z.mean(1, keepdim=True)
        return (z - mean) / torch.sqrt(((z - mean) ** 2).mean(1, keepdim=True) + 1e-6)

    h = F.conv2d(layer_norm(x) * (1 + k1) + s1, block.conv1.weight, block.conv1.bias)
    h = F.gelu(F.conv2d(h, block.conv2.weight, block.conv2.bias, padding=1, groups=6))
    attention = torch.sigmoid(F.conv2d(h.mean((2, 3), keepdim=True), block.ca[1].weight, block.ca[1].bias))
    mid = x + g1 * F.conv2d(h * attention, block.conv3.weight, block.conv3.bias)
    h = F.gelu(F.conv2d(layer_norm(mid) * (1 + k2) + s2, block.conv4.weight, block.conv4.bias))
    expected = mid + g2 * F.conv2d(h, block.conv5.weight, block.conv5.bias)
    torch.testing.assert_close(block(x, c), expected, rtol=1e-12, atol=1e-12)


def test_dico_starts_as_identity_blocks_and_a_zero_output():
    """adaLN and the output conv start at zero (DiT's init): every block passes its input through, the net
    predicts zero noise."""
    torch.manual_seed(0)
    model = create_model("dico_s", hidden_size=8, depth=(1, 1, 1, 1, 1), in_channels=1, classes=10)
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(model.encoder1[0](x, torch.randn(2, 8)), x)
    assert model(torch.randn(2, 1, 16, 16), torch.tensor([1, 2]), torch.tensor([0, 1])).abs().max() == 0


def test_labels_condition_the_output_and_dropout_only_trains():
    torch.manual_seed(0)
    for name in ("dic_s", "dico_s"):
        model = create_model(name, hidden_size=8, depth=(1, 1, 1, 1, 1), in_channels=1, classes=10)
        for p in model.parameters():
            torch.nn.init.normal_(p, std=0.1)
        model.eval()
        x, t = torch.randn(1, 1, 16, 16), torch.tensor([10])
        a, b, null = (model(x, t, torch.tensor([k])) for k in (0, 1, 10))
        assert not torch.allclose(a, b) and not torch.allclose(a, null)
        model.train()  # class_dropout 0.1: over many draws, some labels become the null one
        drawn = model.config.class_dropout
        from convzoo.models._diffusion import drop_labels

        dropped = drop_labels(torch.zeros(10_000, dtype=torch.long), 10, drawn)
        assert set(dropped.unique().tolist()) == {0, 10} and abs((dropped == 10).float().mean() - 0.1) < 0.02
