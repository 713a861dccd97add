"""ESC (S50): the inverse STFT reconstructs; the cross-scale RVQ decoder equals a hand-written loop over scales with
a brute-force product VQ (float64); each transmitted stream lowers the decoder's feature error at its scale;
bitrates are the paper's 1.5-9 kbit/s; parameter counts are the released 8.39M / 15.58M."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convzoo.layers.residual_vq import ResidualVQ
from convzoo.models.counting import meta_param_count
from convzoo.models.esc_codec import ESCCodec
from convzoo.models.registration import create_model
from convzoo.registry import MODELS

SMALL = {"dims": (4, 4, 8, 8, 8, 8), "heads": (1, 1, 2, 2, 2), "depth": 2, "codebook_size": 32}


def small(**cfg) -> ESCCodec:
    torch.manual_seed(0)
    return create_model("esc_codec", **{**SMALL, **cfg}).double()


def speech_like(n: int, t: int, seed: int) -> torch.Tensor:
    """``(n, 1, t)`` float64 mixtures of three decaying tones."""
    g = torch.Generator().manual_seed(seed)
    time = torch.arange(t, dtype=torch.float64) / 16000
    freq = 100 + 2000 * torch.rand(n, 3, 1, generator=g, dtype=torch.float64)
    amp = torch.rand(n, 3, 1, generator=g, dtype=torch.float64)
    return (amp * torch.sin(2 * math.pi * freq * time) * torch.exp(-3 * time)).sum(1, keepdim=True)


def fitted(model: ESCCodec, x: torch.Tensor) -> ESCCodec:
    with torch.no_grad():
        model.train()(x)  # first training batch: every codebook k-means initialised
    return model.eval()


def product_vq_reference(pvq, x):
    """``x`` ``(N, H, W, C)`` → quantised ``(N, H, W, C)``, codes ``(N, groups, W/2)``: the two frames of each step
    flattened channel-major, cut into near-equal slices, projected, nearest codeword by cosine, projected back."""
    n, h, w, c = x.shape
    vectors = torch.stack(
        [
            torch.cat([x[:, :, 2 * t + f, :].transpose(1, 2).reshape(n, c * h) for f in range(2)], -1)
            for t in range(w // 2)
        ],
        1,
    )  # (N, W/2, 2·C·H)
    groups, total = len(pvq.down), vectors.shape[-1]
    bounds = [g * (total // groups) for g in range(groups)] + [total]
    parts, codes = [], []
    for g in range(groups):
        low = vectors[..., bounds[g] : bounds[g + 1]] @ pvq.down[g].weight.T
        book = pvq.vqs[g].codebooks[0]
        index = (F.normalize(low, dim=-1) @ F.normalize(book, dim=-1).T).argmax(-1)  # (N, W/2)
        codes.append(index)
        parts.append(book[index] @ pvq.up[g].weight.T)
    q = torch.cat(parts, -1)
    out = torch.empty_like(x)
    for t in range(w // 2):
        for f in range(2):
            out[:, :, 2 * t + f, :] = q[:, t, f * c * h : (f + 1) * c * h].reshape(n, c, h).transpose(1, 2)
    return out, torch.stack(codes, 1)


def decode_reference(model: ESCCodec, x: torch.Tensor, streams: int):
    """The cross-scale RVQ decoder as a loop over scales; returns waveform, codes and, per transmitted scale,
    (encoder feature, decoder feature before, decoder feature after adding the quantised residual)."""
    t = x.shape[-1]
    frames = -(-(t // 80 + 1) // 4) * 4  # a multiple of time patch 2 × overlap 2
    padded = F.pad(x, (0, (frames - 1) * 80 - t))
    enc = model.encode_features(padded)  # fine to coarse: H = 64, 32, 16, 8, 4, 2
    scales = [enc[5], enc[5], enc[4], enc[3], enc[2], enc[1]]  # stream s quantises at this encoder feature
    z, code = product_vq_reference(model.quantizers[0], scales[0])
    codes, steps = [code], [(scales[0], torch.zeros_like(z), z)]
    for s in range(1, 6):
        if s < streams:
            q, code = product_vq_reference(model.quantizers[s], scales[s] - z)
            steps.append((scales[s], z, z + q))
            z = z + q
            codes.append(code)
        z = model.up[s - 1](z)
    z = model.post(z).permute(0, 3, 1, 2)  # (N, C, 64, W)
    wide = F.conv2d(z, model.deembed.weight, model.deembed.bias, padding=2)  # (N, 6C, 64, W)
    n, c, h, w = z.shape
    fine = torch.empty(n, c, 3 * h, 2 * w, dtype=z.dtype)
    for i in range(3):
        for j in range(2):
            fine[:, :, i::3, j::2] = wide[:, (2 * i + j) * c : (2 * i + j + 1) * c]
    spec = model.deembed_out(fine)  # (N, 2, 192, frames)
    window = torch.hann_window(320, dtype=spec.dtype)
    y = torch.istft(torch.complex(spec[:, 0], spec[:, 1]), 382, 80, 320, window, length=padded.shape[-1])
    return y[:, None, :t], torch.stack(codes), steps


def test_inverse_stft_reconstructs():
    model = small()
    x = torch.randn(3, 4321, dtype=torch.float64)
    spec = model.stft(x)
    assert spec.shape == (3, 2, 192, 4321 // 80 + 1)
    torch.testing.assert_close(model.istft(spec, 4321), x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("streams", [1, 3, 6])
def test_cross_scale_rvq_equals_a_loop_over_scales(streams):
    model = fitted(small(), speech_like(4, 3200, 0))
    x = speech_like(2, 3200, 1)
    with torch.no_grad():
        y, codes, _ = model(x, stages=streams)
        y_ref, codes_ref, _ = decode_reference(model, x, streams)
    assert codes.shape == (streams, 2, 3, 11)  # 0.2 s padded to 44 STFT frames → 22 tokens → 11 steps
    assert torch.equal(codes, codes_ref)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)


def test_each_stream_lowers_the_feature_error_at_its_scale():
    """Identity projections (codebook dimension = slice length) and k-means codebooks fitted on other clips:
    adding stream ``s``'s quantised residual brings the decoder's feature closer to the encoder's."""
    model = small(
        dims=(2,) * 6, heads=(1,) * 5, depth=1, groups=2, codebook_size=64, codebook_dims=(4, 4, 8, 16, 32, 64)
    )
    with torch.no_grad():
        for pvq in model.quantizers:
            for down, up in zip(pvq.down, pvq.up, strict=True):
                down.weight.copy_(torch.eye(down.weight.shape[0], dtype=torch.float64))
                up.weight.copy_(torch.eye(up.weight.shape[0], dtype=torch.float64))
    model = fitted(model, speech_like(16, 3200, 2))
    with torch.no_grad():
        _, _, steps = decode_reference(model, speech_like(4, 3200, 3), 6)
    for s, (enc, before, after) in enumerate(steps):
        error_before, error_after = (enc - before).square().sum(), (enc - after).square().sum()
        assert error_after < 0.9 * error_before, (s, error_before.item(), error_after.item())


def test_shapes_loss_and_gradients_in_training():
    model = small().float().train()
    x = speech_like(2, 3000, 4).float()
    y, codes, loss = model(x, stages=2)
    assert y.shape == x.shape and codes.shape == (2, 2, 3, 10) and loss.dim() == 0
    y, codes, loss = model(speech_like(2, 3000, 5).float())  # other clips: the codes are no longer exact
    assert codes.shape == (6, 2, 3, 10) and loss > 0
    (y.square().mean() + loss).backward()
    book = model.quantizers[0].vqs[0].codebooks
    assert isinstance(book, torch.nn.Parameter) and book.grad is not None and book.grad.abs().sum() > 0
    assert model.embed.weight.grad is not None and model.up[0].resample.weight.grad is not None


def test_codebook_loss_and_cosine_search_of_the_learned_codebooks():
    torch.manual_seed(0)
    vq = ResidualVQ(4, 1, 16, l2norm=True, ema=False).double().train()
    x = torch.randn(2, 4, 50, dtype=torch.float64)
    vq(x)  # k-means initialisation
    book = vq.codebooks[0].detach().clone()
    vectors = x.permute(0, 2, 1).reshape(-1, 4)
    cosine = torch.stack([torch.stack([F.cosine_similarity(v, b, dim=0) for b in book]) for v in vectors])
    _, codes, loss = vq(x)
    assert torch.equal(codes[0].reshape(-1), cosine.argmax(1))
    chosen = book[cosine.argmax(1)]
    expected = 0.25 * (vectors - chosen).square().mean() + (vectors - chosen).square().mean()
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    loss.backward()
    torch.testing.assert_close(vq.codebooks.grad[0].abs().sum(1) > 0, torch.isin(torch.arange(16), codes))


def test_bitrate_is_the_papers():
    # 16 kHz / (hop 80 · time patch 2 · overlap 2) = 50 steps/s; 3 codebooks of 1024 (10 bits) per stream
    model = create_model("esc_codec", **SMALL | {"codebook_size": 1024})
    assert [model.bitrate(k) for k in range(1, 7)] == [1500, 3000, 4500, 6000, 7500, 9000]
    assert model.bitrate() == 9000 == 50 * 6 * 3 * 10
    official = (2 / 2) * 6 * math.log2(1024) * 3 // (20 * 2 // 2)  # the official max_bps formula, kbit/s
    assert official * 1000 == model.bitrate()
    with pytest.raises(ValueError, match="stages"):
        model.bitrate(7)


@pytest.mark.parametrize(("name", "published"), [("esc_codec", 8_390_000), ("esc_codec_large", 15_580_000)])
def test_published_parameter_counts(name, published):
    info = MODELS.get(name).info
    counted = meta_param_count(name)
    assert info.params == published and "README" in info.params_source
    assert abs(counted - published) <= 0.005 * published, f"{name}: {counted:,} vs {published:,}"
    with torch.device("meta"):
        model = create_model(name)
    codebooks = sum(p.numel() for n, p in model.named_parameters() if n.endswith("codebooks"))
    assert codebooks == 6 * 3 * 1024 * 8  # six streams of three 1024 × 8 codebooks, counted as parameters


def test_bad_arguments_raise():
    model = small()
    with pytest.raises(ValueError, match="stages"):
        model(torch.zeros(1, 1, 800, dtype=torch.float64), stages=0)
    with pytest.raises(ValueError, match="waveform"):
        model(torch.zeros(1, 800, dtype=torch.float64))
    with pytest.raises(ValueError, match="heads"):
        create_model("esc_codec", heads=(3, 6, 12))
    with pytest.raises(ValueError, match="frequency bins"):
        create_model("esc_codec", n_fft=400)


_OFFICIAL_NAMES = [  # official parameter name fragment → convzoo's
    ("encoder.patch_embed.proj", "embed"),
    ("encoder.patch_embed.norm", "embed_norm"),
    ("encoder.pre_nn", "pre"),
    ("encoder.blocks", "down"),
    ("decoder.blocks", "up"),
    ("decoder.post_nn", "post"),
    ("decoder.patch_deembed.de_proj1", "deembed"),
    ("decoder.patch_deembed.de_proj2", "deembed_out"),
    ("swint_blocks", "blocks"),
    ("mlp.linear_1", "mlp.0"),
    ("mlp.linear_2", "mlp.2"),
    ("subsample.down", "resample"),
    ("subsample.up", "resample"),
    ("subsample.norm", "norm"),
    ("down_projs", "down"),
    ("up_projs", "up"),
    ("embedding.weight", "codebooks"),
]


@pytest.mark.peer
@pytest.mark.slow
def test_matches_the_official_esc():
    """The official ``esc`` package (yzGuu830/efficient-speech-codec, with its einops/timm/torchaudio imports):
    same parameter count, and with its weights copied the same codes, VQ loss and waveform for 1-6 streams."""
    codecs = pytest.importorskip("esc.models.codecs", reason="the official ESC code (esc package) is not importable")
    torch.manual_seed(0)
    official = codecs.ESC().double().eval()
    model = create_model("esc_codec").double().eval()
    assert sum(p.numel() for p in official.parameters()) == sum(p.numel() for p in model.parameters())
    state = model.state_dict()
    for name, value in official.state_dict().items():
        if "relative_position_index" in name:
            continue
        for old, new in _OFFICIAL_NAMES:
            name = name.replace(old, new)
        state[name].copy_(value[None] if name.endswith("codebooks") else value)
    x = 0.1 * torch.randn(2, 3440, dtype=torch.float64)  # 44 STFT frames: no padding on either side
    with torch.no_grad():
        for streams in range(1, 7):
            out = official(x, None, num_streams=streams)
            y, codes, loss = model(x[:, None], stages=streams)
            assert torch.equal(codes, out["codes"].transpose(0, 1))
            torch.testing.assert_close(y[:, 0], out["recon_audio"], rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(loss, 0.25 * out["cm_loss"].mean() + out["cb_loss"].mean())
