"""The ``audio`` task's contract over every registered ``kind == "audio"`` model: waveforms in, logits out, a
backward pass, published counts; and the S24 log-mel nets' counts (CNeXt-Tiny 28.2M, PANN CNN14 80.8M)."""

from __future__ import annotations

import pytest
import torch

from convzoo.models.counting import meta_param_count
from convzoo.registry import MODELS
from convzoo.train.tasks.audio import build_audio_model

pytest.importorskip("librosa", reason="librosa (the audio extra) is not installed: the log-mel front end needs it")

AUDIO = [e.name for e in MODELS.entries() if e.kind == "audio"]
# narrow configs so that each forward/backward is cheap; the registered configs are counted on the meta device
SMALL = {
    "acdnet": {"channels": (4, 16, 8, 8, 8, 16, 16, 16, 16, 32, 32)},
    "micro_acdnet": {},
    "convnext_audio_tiny": {"depths": (1, 1, 1, 1), "dims": (8, 16, 32, 64)},
    "convnext_audio_atto": {"depths": (1, 1, 1, 1), "dims": (8, 16, 32, 64)},
    "pann_cnn14": {"widths": (4, 8, 8, 16, 16, 16), "embedding": 16},
    "pann_ds_cnn14": {"widths": (4, 8, 8, 16, 16, 16), "embedding": 16},
    "aclnet": {"width": 0.25},
}


@pytest.mark.parametrize("name", AUDIO)
def test_waveforms_in_logits_out_and_gradients_flow(name):
    torch.manual_seed(0)
    model = build_audio_model(name, 5, 16000, 8000, SMALL.get(name, {}))
    y = model(torch.randn(2, 1, 8000) * 0.1)
    assert y.shape == (2, 5) and torch.isfinite(y).all()
    y.logsumexp(1).mean().backward()
    assert sum(p.grad is not None for p in model.parameters()) > 0.9 * len(list(model.parameters()))


@pytest.mark.parametrize("name", [n for n in AUDIO if MODELS.get(n).info.params is not None])
def test_published_parameter_count(name):
    info = MODELS.get(name).info
    counted = meta_param_count(name)
    assert abs(counted - info.params) <= 0.005 * info.params, f"{name}: {counted:,} vs {info.params_source}"


def test_every_audio_model_states_its_source():
    for name in AUDIO:
        info = MODELS.get(name).info
        assert info.params_source and not info.takes_op and info.input_size[0] == 1
