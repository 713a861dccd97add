"""The multi-representation ensemble (S57): sum-rule averaging against hand values and a loop; WaveMsNet (S62):
multi-scale branches aligned to 10-ms frames, and the two-phase hand-over of the waveform front end."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from convzoo.models.audio_ensemble import AudioEnsemble, AudioEnsembleConfig
from convzoo.models.registration import create_model

pytest.importorskip("librosa", reason="librosa (the audio extra) is not installed: the log-mel front end needs it")


class Constant(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits, dtype=torch.float64))

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


def test_sum_rule_on_hand_values():
    # probabilities (1/4, 3/4) and (3/4, 1/4) average to (1/2, 1/2); (1, 0)-ish and (0, 1)-ish likewise
    members = [Constant([0.0, math.log(3.0)]), Constant([math.log(3.0), 0.0])]
    ensemble = AudioEnsemble.from_members(members, AudioEnsembleConfig(classes=2))
    out = ensemble(torch.zeros(3, 1, 10, dtype=torch.float64))
    torch.testing.assert_close(out, torch.full((3, 2), math.log(0.5), dtype=torch.float64), rtol=0, atol=1e-15)


def test_ensemble_output_is_the_log_of_the_mean_member_probability():
    torch.manual_seed(0)
    ensemble = create_model("audio_ensemble", classes=4, width=0.125).double().eval()
    assert [m.config.frontend for m in ensemble.members] == ["waveform", "stft", "logmel"]
    x = torch.randn(2, 1, 1600, dtype=torch.float64)
    mean = torch.zeros(2, 4, dtype=torch.float64)
    for member in ensemble.members:  # the sum rule, one member at a time
        mean += torch.softmax(member(x), dim=1) / 3
    torch.testing.assert_close(ensemble(x), mean.log(), rtol=1e-12, atol=1e-12)
    one = create_model("audio_ensemble", classes=4, width=0.125, representations=("stft",)).double().eval()
    torch.testing.assert_close(one(x), one.members[0](x).log_softmax(1), rtol=1e-12, atol=1e-12)


def test_wavemsnet_branches_share_10_ms_frames_and_phase_two_inherits_the_front_end():
    torch.manual_seed(0)
    wave = create_model("wavemsnet", classes=3, phase="wave", branch_channels=8, widths=(8, 8, 8, 8)).eval()
    x = torch.randn(2, 1, 16000)
    outs = [branch(x) for branch in wave.branches]
    assert [o.shape for o in outs] == [(2, 8, 100)] * 3  # kernels 11/51/101 at strides 1/5/10 → 100 frames
    assert wave.waveform_image(x).shape == (2, 1, 24, 100)
    fused = type(wave).from_phase1(wave).eval()
    assert fused.config.phase == "fused" and fused.logmel.n_mels == 24
    torch.testing.assert_close(fused.waveform_image(x), wave.waveform_image(x))
    assert fused(x).shape == (2, 3)
    with pytest.raises(ValueError, match="expected a phase='wave' net"):
        type(wave).from_phase1(fused)
    with pytest.raises(ValueError, match="does not divide"):
        create_model("wavemsnet", strides=(1, 3, 10))
