"""Order-flow images (S78, "Learning to Predict Short-Term Volatility with Order Flow Image Representation"): a
seeded synthetic limit-order-book generator and the snapshot ↔ image transform.

A snapshot at step t holds ``levels`` bid and ask levels: integer prices in ticks and positive volumes,
``book[t] = (bid_price[L], bid_volume[L], ask_price[L], ask_volume[L])``. :func:`book_to_image` writes the window
of ``T`` snapshots as a two-channel image ``(2, 2R + 1, T)``: channel 0 the bid volumes, channel 1 the ask
volumes, row ``R + (price − reference[t])`` for a price ``reference[t]`` ticks (the mid price rounded down), so
the price axis is relative and the image is translation-invariant in price. :func:`image_to_book` inverts it
exactly for books whose levels lie within ``±R`` ticks of the reference (tested).

:func:`synthetic_order_flow` draws a mid price from a random walk whose volatility follows a seeded regime
(log-volatility AR(1)), books of ``levels`` levels with random gaps and volumes around it, and as target the
volatility (ticks per step) of the next ``horizon`` steps: the regime's mean ``exp(log-vol)``, not the realised
standard deviation of the rounded moves, whose rounding noise at low volatility hides most of the signal.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from convzoo.core.validate import check_int

__all__ = ["book_to_image", "image_to_book", "synthetic_order_flow"]


def book_to_image(book: Tensor, reference: Tensor, radius: int) -> Tensor:
    """Snapshots ``book`` ``(T, 4, L)`` (bid price, bid volume, ask price, ask volume; prices in ticks) → image
    ``(2, 2·radius + 1, T)`` of volumes at price offsets from ``reference`` ``(T,)``."""
    check_int(radius, "radius", "book_to_image")
    t_steps, _, levels = book.shape
    image = torch.zeros(2, 2 * radius + 1, t_steps, dtype=book.dtype)
    time = torch.arange(t_steps).repeat_interleave(levels)  # (T·L,)
    for channel, (price, volume) in enumerate(((0, 1), (2, 3))):
        rows = (book[:, price] - reference[:, None]).round().long() + radius  # (T, L)
        if (rows < 0).any() or (rows > 2 * radius).any():
            raise ValueError(f"book_to_image: a level lies beyond ±{radius} ticks of its reference price")
        image[channel].index_put_((rows.flatten(), time), book[:, volume].flatten(), accumulate=True)
    return image


def image_to_book(image: Tensor, reference: Tensor, levels: int) -> Tensor:
    """The inverse of :func:`book_to_image`: ``(2, 2R + 1, T)`` → ``(T, 4, levels)``; bids best (highest) first,
    asks best (lowest) first, as the generator orders them."""
    radius = (image.shape[1] - 1) // 2
    t_steps = image.shape[2]
    book = torch.zeros(t_steps, 4, levels, dtype=image.dtype)
    for t in range(t_steps):
        for channel in range(2):
            rows = image[channel, :, t].nonzero().flatten()  # ascending price
            if len(rows) != levels:
                raise ValueError(f"image_to_book: step {t} has {len(rows)} levels on side {channel}, not {levels}")
            rows = rows.flip(0) if channel == 0 else rows  # bids: highest first
            book[t, 2 * channel] = reference[t] + rows.to(image.dtype) - radius
            book[t, 2 * channel + 1] = image[channel, rows, t]
    return book


def synthetic_order_flow(
    samples: int, *, window: int = 32, levels: int = 5, radius: int = 16, horizon: int = 8, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``samples`` windows: images ``(samples, 2, 2R + 1, window)``, targets ``(samples,)`` (the next ``horizon``
    steps' volatility in ticks per step), the books ``(samples, window, 4, levels)`` and references
    ``(samples, window)``."""
    for value, what in ((samples, "samples"), (window, "window"), (levels, "levels"), (horizon, "horizon")):
        check_int(value, what, "synthetic_order_flow")
    if 2 * levels > radius:
        raise ValueError(f"synthetic_order_flow: radius must be ≥ 2·levels = {2 * levels}, got {radius}")
    rng = np.random.default_rng(seed)
    steps = window + horizon
    images, targets, books, refs = [], [], [], []
    for _ in range(samples):
        log_vol = np.empty(steps)
        log_vol[0] = rng.normal(0.0, 0.6)
        for t in range(1, steps):  # volatility regime: log-vol AR(1)
            log_vol[t] = 0.9 * log_vol[t - 1] + rng.normal(0.0, 0.25)
        mid = 1000 + np.cumsum(np.round(rng.normal(0.0, np.exp(log_vol))))  # ticks
        reference = np.floor(mid[:window])
        book = np.zeros((window, 4, levels))
        for t in range(window):
            gaps_bid = np.cumsum(rng.integers(1, 3, levels)) - 1  # best bid at reference, then down
            gaps_ask = np.cumsum(rng.integers(1, 3, levels))  # best ask above reference
            spread_volume = np.exp(log_vol[t])  # thinner books in volatile regimes
            book[t, 0] = reference[t] - gaps_bid
            book[t, 1] = rng.integers(20, 31, levels) / spread_volume
            book[t, 2] = reference[t] + gaps_ask
            book[t, 3] = rng.integers(20, 31, levels) / spread_volume
        book_t, ref_t = torch.tensor(book, dtype=torch.float32), torch.tensor(reference, dtype=torch.float32)
        images.append(book_to_image(book_t, ref_t, radius))
        targets.append(float(np.exp(log_vol[window:]).mean()))  # the next steps' volatility, ticks per step
        books.append(book_t)
        refs.append(ref_t)
    return torch.stack(images), torch.tensor(targets), torch.stack(books), torch.stack(refs)
