"""RDNet (S61): channel arithmetic of RDNet-T against the official model card and the paper's rules."""

from __future__ import annotations

import torch

from convzoo.layers.squeeze_excite import EffectiveSqueezeExcite
from convzoo.models import create_model
from convzoo.models.rdnet import FeatureMixer


def test_feature_channels_and_strides_of_the_model_card():
    # rdnet_tiny.nv_in1k model card: features (1, 256, 56, 56), (1, 440, 28, 28), (1, 744, 14, 14), (1, 1040, 7, 7)
    model = create_model("rdnet_tiny", features_only=True)
    assert [(i.channels, i.reduction) for i in model.feature_info] == [(256, 4), (440, 8), (744, 16), (1040, 32)]


def test_transitions_and_mixer_widths():
    model = create_model("rdnet_tiny")
    # transitions keep ⌊C·0.5 / 8⌋·8 channels: by hand, C = 256, 440, 216 + 3·128 = 600, 296 + 384 = 680,
    # 336 + 384 = 720, 360 + 384 = 744 → 128, 216, 296, 336, 360, 368; 2×2/2 convs where the stage downsamples
    # each dense stage after the first is (LayerNorm, transition conv, DenseStage)
    transitions = [dense[1] for group in model.stages for dense in group if len(dense) == 3]
    assert [(m.in_channels, m.out_channels, m.kernel_size[0]) for m in transitions] == [
        (256, 128, 2),
        (440, 216, 2),
        (600, 296, 1),
        (680, 336, 1),
        (720, 360, 1),
        (744, 368, 2),
    ]
    mixers = [m for m in model.modules() if isinstance(m, FeatureMixer)]
    assert len(mixers) == 21
    # first stage: inputs 64, 128, 192; expansion to ⌊4·C / 8⌋·8; growth 64; no ESE in the first two stages
    first = mixers[:3]
    assert [m.body[0].in_channels for m in first] == [64, 128, 192]
    assert [m.body[2].out_channels for m in first] == [256, 512, 768]
    assert [m.body[4].out_channels for m in first] == [64, 64, 64]
    assert [any(isinstance(x, EffectiveSqueezeExcite) for x in m.body) for m in mixers] == [False] * 6 + [True] * 15
    assert all(torch.all(m.layer_scale.scale == 1e-6) for m in mixers)
