"""ACDNet's compression pipeline (S44): the pruned net equals the original with the pruned filters silenced
(float64), the kept filters are the largest-norm ones, and the whole pipeline reports smaller, cheaper steps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo.data.audio import TensorAudioDataset, audio_info
from convzoo.deploy.acdnet_pipeline import compress_acdnet, kept_filters, prune_acdnet
from convzoo.models.registration import create_model

CHANNELS = (4, 16, 8, 8, 8, 16, 16, 16, 16, 32, 32)


def small_acdnet() -> nn.Module:
    torch.manual_seed(0)
    model = create_model("acdnet", classes=4, sample_rate=16000, samples=3200, channels=CHANNELS)
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model.eval()


def test_kept_filters_are_the_largest_l2_norms():
    conv = nn.Conv2d(3, 10, 3)
    expected = conv.weight.flatten(1).norm(dim=1).argsort(descending=True)[:4].sort().values
    assert kept_filters(conv, 0.4).tolist() == expected.tolist()


def test_pruned_tfeb_equals_the_original_with_pruned_filters_silenced():
    model = small_acdnet().double()
    pruned = prune_acdnet(model, keep=0.5, sfeb_keep=1.0).double().eval()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]  # one after each conv's BN
    hooks = []
    for conv, relu in list(zip(convs, relus, strict=True))[2:11]:  # conv3 … conv11
        mask = torch.zeros(conv.out_channels, dtype=torch.float64)
        mask[kept_filters(conv, 0.5)] = 1
        hooks.append(relu.register_forward_hook(lambda m, i, out, mask=mask: out * mask.view(1, -1, 1, 1)))
    x = torch.randn(3, 1, 3200, dtype=torch.float64)
    with torch.no_grad():
        reference = model(x)
        for hook in hooks:
            hook.remove()
        torch.testing.assert_close(pruned(x), reference, rtol=1e-10, atol=1e-10)
    assert pruned.config.channels == (4, 16, 4, 4, 4, 8, 8, 8, 8, 16, 16)
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters()) / 2.5


@pytest.mark.slow
def test_the_pipeline_reports_smaller_cheaper_steps():
    torch.manual_seed(0)
    x, y = torch.randn(24, 1, 3200), torch.randint(0, 4, (24,))
    data = TensorAudioDataset(x, y, audio_info("noise", "train", tuple("abcd"), 3200, 16000))
    int8, report = compress_acdnet(small_acdnet(), data, data, keep=0.5, epochs=1, batch_size=8, calib_batches=2)
    names = [s.name for s in report.steps]
    assert names == ["trained", "pruned", "fine-tuned", "int8"]
    trained, pruned, _, quantised = report.steps
    assert pruned.params < trained.params / 3 and pruned.macs < trained.macs / 3
    assert quantised.size_bytes < pruned.size_bytes and quantised.macs == pruned.macs
    assert int8(x[:2]).shape == (2, 4) and "fewer MACs" in report.table()
