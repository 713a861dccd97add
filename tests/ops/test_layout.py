"""ops/_layout: memory-format helpers agree with the torch functions they stand for and keep the input's layout."""

from __future__ import annotations

import pytest
import torch

from convzoo.ops._layout import concat, empty, is_channels_last, memory_format, subsample, take_channels

CL = {4: torch.channels_last, 5: torch.channels_last_3d}


def _tensor(shape, channels_last: bool) -> torch.Tensor:
    x = torch.randn(*shape, dtype=torch.float64)
    return x.contiguous(memory_format=CL[len(shape)]) if channels_last else x


def _keeps(y: torch.Tensor, channels_last: bool) -> bool:
    return y.is_contiguous(memory_format=CL[y.dim()]) if channels_last else y.is_contiguous()


def test_memory_format():
    assert memory_format(torch.randn(2, 3, 4, 5)) is torch.contiguous_format
    assert memory_format(_tensor((2, 3, 4, 5), True)) is torch.channels_last
    assert memory_format(_tensor((2, 3, 4, 5, 6), True)) is torch.channels_last_3d
    assert memory_format(torch.randn(2, 3, 4)) is torch.contiguous_format  # no channels-last for 1-d
    assert memory_format(_tensor((0, 3, 4, 5), True)) is torch.channels_last
    # one channel is both layouts: channels-last when written so (channel stride 1), as PyTorch reads it
    assert memory_format(torch.randn(2, 1, 4, 5)) is torch.contiguous_format
    assert memory_format(_tensor((2, 3, 4, 5), True)[:, :1] * 2) is torch.channels_last
    assert memory_format(_tensor((2, 3, 1, 1), True)) is torch.contiguous_format  # one pixel: contiguous
    assert is_channels_last(_tensor((2, 3, 4, 5), True)) and not is_channels_last(torch.randn(2, 3, 4, 5))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", [(2, 6, 5, 4), (2, 6, 3, 5, 4)])
def test_take_channels_is_index_select_in_the_input_layout(shape, channels_last):
    x = _tensor(shape, channels_last).requires_grad_(True)
    index = torch.tensor([4, 0, 5, 2])
    y = take_channels(x, index)
    assert _keeps(y, channels_last)
    torch.testing.assert_close(y, x.detach().index_select(1, index), rtol=0, atol=0)
    grad = torch.randn_like(y)
    reference = x.detach().requires_grad_(True)
    expected = torch.autograd.grad(reference.index_select(1, index), reference, grad)[0]
    torch.testing.assert_close(torch.autograd.grad(y, x, grad)[0], expected, rtol=0, atol=0)


@pytest.mark.parametrize("channels_last", [False, True])
def test_concat_is_cat_in_the_layout_of_like(channels_last):
    x = _tensor((2, 6, 5, 4), channels_last).requires_grad_(True)
    pieces = [x[:, 4:], x[:, :1, :, :], 2 * x[:, 1:4]]  # strided channel slices, as torch.cat would get
    y = concat(pieces, 1, x)
    assert _keeps(y, channels_last)
    torch.testing.assert_close(y, torch.cat([p.detach() for p in pieces], 1), rtol=0, atol=0)
    y.sum().backward()
    torch.testing.assert_close(x.grad[:, 1:4], torch.full_like(x[:, 1:4], 2.0))
    assert concat([x[:1], x[1:]], 0, x).shape == x.shape


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(("shape", "stride"), [((2, 3, 7, 8), (2, 3)), ((2, 3, 5, 4, 7), (2, 2, 2))])
def test_subsample_is_a_dense_copy_in_the_input_layout(shape, stride, channels_last):
    x = _tensor(shape, channels_last)
    y = subsample(x, stride)
    assert _keeps(y, channels_last)
    torch.testing.assert_close(y, x[(..., *(slice(None, None, s) for s in stride))], rtol=0, atol=0)
    assert subsample(x, (1,) * len(stride)) is x


def test_empty_takes_dtype_device_and_layout():
    x = _tensor((2, 3, 4, 5), True)
    y = empty((1, 7, 2, 2), like=x)
    assert y.shape == (1, 7, 2, 2) and y.dtype == x.dtype and y.is_contiguous(memory_format=torch.channels_last)
