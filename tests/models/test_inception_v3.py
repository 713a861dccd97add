"""Inception-v3 (S3): published counts with and without the auxiliary head, the paper's grid sizes, the auxiliary
classifier's place in the graph, the label-smoothing loss against its formula, and timm's port (peer)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convzoo.models import create_model
from convzoo.models.counting import meta_param_count
from convzoo.models.inception_v3 import inception_loss

SMALL = {"aux_logits": False, "padding": "same"}


def test_published_counts_with_and_without_the_auxiliary_head():
    # torchvision inception_v3 IMAGENET1K_V1: 27,161,264 (aux included); timm inception_v3 (no aux): 23,834,568
    assert meta_param_count("inception_v3") == 27_161_264
    assert meta_param_count("inception_v3", aux_logits=False) == 23_834_568


def test_valid_padding_gives_the_paper_grid_sizes_at_299():
    # Table 1: 299 → 147 → 73 → 71 → 35 (Inception-A) → 17 (Inception-B) → 8 (Inception-C)
    with torch.device("meta"):
        model = create_model("inception_v3")
        features = model.forward_stages(torch.empty(2, 3, 299, 299))
        logits, aux = model.forward_train(torch.empty(2, 3, 299, 299))
    assert [tuple(f.shape[1:]) for f in features] == [
        (64, 147, 147),
        (192, 71, 71),
        (288, 35, 35),
        (768, 17, 17),
        (2048, 8, 8),
    ]
    assert logits.shape == aux.shape == (2, 1000)


def test_block_widths_follow_table_1():
    with torch.device("meta"):
        model = create_model("inception_v3")
    stage2, stage3, stage4 = model.stages[2], model.stages[3], model.stages[4]
    assert [b.out_channels for b in list(stage2)[1:]] == [256, 288, 288]
    assert [b.out_channels for b in stage3] == [768] * 5
    assert [b.out_channels for b in stage4] == [1280, 2048, 2048]
    c7 = [b.branch7x7[0][0].out_channels for b in list(stage3)[1:]]
    assert c7 == [128, 160, 160, 192]
    factorised = [m.kernel_size for m in stage3[1].branch7x7dbl.modules() if isinstance(m, nn.Conv2d)]
    assert factorised == [(1, 1), (7, 1), (1, 7), (7, 1), (1, 7)]


@pytest.mark.slow
def test_auxiliary_loss_reaches_only_the_layers_below_the_17x17_map():
    torch.manual_seed(0)
    model = create_model("inception_v3", num_classes=5)
    logits, aux = model.forward_train(torch.randn(2, 3, 299, 299))
    aux.sum().backward()
    grads = {n: p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters()}
    assert all(v for n, v in grads.items() if n.startswith(("stages.0", "stages.3", "head.aux")))
    assert not any(v for n, v in grads.items() if n.startswith(("stages.4", "head.fc")))


def test_auxiliary_head_in_train_mode_on_a_17x17_map_only():
    torch.manual_seed(0)
    model = create_model("inception_v3", num_classes=5, padding="same")
    with pytest.raises(ValueError, match=r"inception_v3: the auxiliary head needs a map of at least 17², got \(2, 2\)"):
        model.forward_train(torch.randn(2, 3, 32, 32))
    aux = model.head.aux
    out = aux(torch.randn(2, 768, 17, 17))
    assert out.shape == (2, 5)
    model.reset_classifier(3)
    assert aux.fc.out_features == 3 and model.head.fc.out_features == 3
    assert inception_loss(*model.forward_train(torch.randn(2, 3, 17 * 16, 17 * 16)), torch.tensor([0, 2])).dim() == 0


def test_label_smoothing_loss_equals_its_formula():
    torch.manual_seed(0)
    k, eps = 7, 0.1
    logits, aux = torch.randn(4, k, dtype=torch.float64), torch.randn(4, k, dtype=torch.float64)
    target = torch.tensor([0, 3, 6, 3])

    def smoothed(z):  # §7: q'(k) = (1 − ε) δ(k, y) + ε / K, loss −Σ q' log p
        q = torch.full((4, k), eps / k, dtype=torch.float64)
        q[torch.arange(4), target] += 1 - eps
        return -(q * F.log_softmax(z, 1)).sum(1).mean()

    expected = smoothed(logits) + 0.4 * smoothed(aux)
    assert torch.allclose(inception_loss(logits, aux, target), expected, atol=1e-12)
    assert torch.allclose(inception_loss(logits, None, target, smoothing=0.0), F.cross_entropy(logits, target))
    with pytest.raises(ValueError, match=r"inception_loss: smoothing must be"):
        inception_loss(logits, aux, target, smoothing=1.0)


def test_op_replaces_the_padded_square_convs():
    def replaced(model):
        return sum(type(m).__module__ == "convzoo.ops.factorized" for m in model.modules())

    with torch.device("meta"):
        valid = create_model("inception_v3", op="asym")
    # stem's padded 3×3, 3 × Inception-A (5×5 + two 3×3), Reduction-A's first 3×3, 2 × Inception-C's 3×3
    assert replaced(valid) == 1 + 3 * 3 + 1 + 2
    model = create_model("inception_v3", op="asym", num_classes=4, **SMALL)
    assert replaced(model) == 2 + 1 + 3 * 3 + 1 + 2  # "same" pads the stem's other two stride-1 3×3s
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 4)


def test_bad_config_raises():
    with pytest.raises(ValueError, match=r"inception_v3: inception_v3: padding must be one of 'valid', 'same'"):
        create_model("inception_v3", padding="full")


@pytest.mark.peer
def test_equals_timm_inception_v3_with_its_weights():
    try:
        import timm
    except ImportError as error:
        pytest.skip(f"timm is not importable: {error}")
    torch.manual_seed(0)
    peer = timm.create_model("inception_v3", aux_logits=True).double().eval()
    model = create_model("inception_v3").double().eval()
    theirs, ours = peer.state_dict(), model.state_dict()

    def order(keys, aux, fc):
        keys = list(keys)
        return (
            [k for k in keys if k.startswith(aux)]
            + [k for k in keys if k.startswith(fc)]
            + [k for k in keys if not k.startswith((aux, fc))]
        )

    pairs = zip(order(theirs, "AuxLogits", "fc."), order(ours, "head.aux", "head.fc"), strict=True)
    model.load_state_dict({b: theirs[a] for a, b in pairs})
    x = torch.randn(2, 3, 299, 299, dtype=torch.float64)
    with torch.no_grad():
        logits, aux = peer(x)
        torch.testing.assert_close(model(x), logits, rtol=0, atol=1e-10)
        torch.testing.assert_close(model.forward_train(x)[1], aux, rtol=0, atol=1e-10)
