"""ACDNet (S44): published counts of ACDNet and Micro-ACDNet, the SFEB's 10-ms frames, pooling to one cell."""

from __future__ import annotations

import pytest
import torch

from convzoo.models.counting import meta_param_count
from convzoo.models.registration import create_model
from convzoo.registry import MODELS


def test_acdnet_has_the_published_4_74m_parameters():
    published = MODELS.get("acdnet").info.params  # Table 3: 4.74M at ESC-50 settings
    assert abs(meta_param_count("acdnet") - published) <= 0.005 * published


def test_micro_acdnet_has_the_published_0_131m_to_the_papers_precision():
    counted = meta_param_count("micro_acdnet")  # Table 11 gives 0.131M: three significant figures
    assert abs(counted - 131_000) <= 1_000


def test_sfeb_frames_are_10_ms_and_the_tfeb_pools_to_one_cell():
    model = create_model("acdnet", classes=10, sample_rate=16000, samples=16000).eval()
    x = torch.randn(1, 1, 16000)
    sfeb = model.sfeb(x.unsqueeze(2))
    assert sfeb.shape == (1, 64, 1, 99)  # (16000 − 9)//2+1 → (… − 5)//2+1 = 3996 → /40 → 99 frames
    assert model(x).shape == (1, 10)
    head_input = model.tfeb[:-2](sfeb.permute(0, 2, 1, 3))
    assert head_input.shape == (1, 10, 1, 1)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="11 widths"):
        create_model("acdnet", channels=(8, 64))
    with pytest.raises(ValueError, match="no 10-ms frame"):
        create_model("acdnet", samples=150)
