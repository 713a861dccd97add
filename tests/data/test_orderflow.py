"""Order-flow images (S78): the book ↔ image transform round-trips exactly, volumes land at their price offsets,
and the CNN regressor learns the synthetic volatility target better than the mean."""

from __future__ import annotations

import pytest
import torch

from convzoo.data.orderflow import book_to_image, image_to_book, synthetic_order_flow
from convzoo.models.registration import create_model


def test_the_transform_round_trips_exactly():
    images, _, books, refs = synthetic_order_flow(4, window=12, levels=5, radius=12, seed=3)
    for image, book, ref in zip(images, books, refs, strict=True):
        torch.testing.assert_close(image_to_book(image, ref, 5), book, rtol=0, atol=0)
        torch.testing.assert_close(book_to_image(book, ref, 12), image, rtol=0, atol=0)


def test_volumes_land_at_their_price_offsets():
    book = torch.tensor([[[100.0, 99.0], [5.0, 7.0], [101.0, 103.0], [2.0, 3.0]]])  # one step, two levels
    image = book_to_image(book, torch.tensor([100.0]), radius=4)
    assert image.shape == (2, 9, 1)
    assert image[0, 4, 0] == 5 and image[0, 3, 0] == 7 and image[1, 5, 0] == 2 and image[1, 7, 0] == 3
    assert image.sum() == 17
    with pytest.raises(ValueError, match="beyond ±1 ticks"):
        book_to_image(book, torch.tensor([100.0]), radius=1)


@pytest.mark.slow
def test_the_cnn_regressor_learns_the_volatility_target():
    torch.manual_seed(0)
    images, targets, _, _ = synthetic_order_flow(256, window=16, levels=4, radius=10, seed=0)
    train_x, train_y, test_x, test_y = images[:192], targets[:192], images[192:], targets[192:]
    model = create_model("orderflow_cnn", widths=(8, 16, 16))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(30):
        for i in range(0, 192, 32):
            loss = (model(train_x[i : i + 32]) - train_y[i : i + 32]).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        mse = (model(test_x) - test_y).square().mean()
    baseline = (train_y.mean() - test_y).square().mean()  # predicting the training mean
    assert mse < 0.9 * baseline, (mse.item(), baseline.item())
