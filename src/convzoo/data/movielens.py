"""MovieLens-100k (``u.data``) as implicit feedback for recommendation, and a synthetic bipartite set for tests.

``u.data`` holds one rating per line, ``user \\t item \\t rating \\t timestamp`` with 1-based ids (943 users,
1,682 items, 100,000 ratings). Every rating counts as an interaction (implicit feedback, as LCFN and most
graph recommenders use MovieLens); each user's interactions are split 80/20 at random with a fixed seed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from convzoo.core.graph import Interactions
from convzoo.core.validate import check_int, check_number
from convzoo.data.base import check_root
from convzoo.registry import DATASETS

__all__ = ["load_movielens", "split_interactions", "synthetic_interactions"]

LAYOUT = "a folder holding u.data (user<TAB>item<TAB>rating<TAB>timestamp per line, ids from 1): the ml-100k folder"
TEST_FRACTION = 0.2


def split_interactions(
    name: str, users: torch.Tensor, items: torch.Tensor, num_users: int, num_items: int, seed: int = 0
) -> Interactions:
    """Each user's interactions split at random, ``TEST_FRACTION`` to test (at least one kept for training)."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(users), generator=generator)
    users, items = users[order], items[order]
    by_user = torch.argsort(users, stable=True)
    users, items = users[by_user], items[by_user]
    counts = torch.bincount(users, minlength=num_users)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(users)) - starts[users]  # position of each pair within its user's (shuffled) list
    n_test = (counts.float() * TEST_FRACTION).floor().long().clamp(max=(counts - 1).clamp_min(0))
    test = rank < n_test[users]
    pairs = torch.stack([users, items])
    return Interactions(name, num_users, num_items, pairs[:, ~test], pairs[:, test])


@DATASETS.register("movielens100k", kind="recommend", dims=(1,))
def load_movielens(split: str = "train", root: str | Path | None = None) -> Interactions:
    """MovieLens-100k from ``u.data`` as implicit feedback (943 users × 1,682 items), an 80/20 split per user."""
    folder = check_root("movielens100k", root, LAYOUT)
    path = folder / "u.data"
    if not path.is_file():
        raise FileNotFoundError(f"movielens100k: missing {str(path)!r}; expected layout: {LAYOUT}")
    users, items = [], []
    for number, line in enumerate(path.read_text(encoding="latin-1").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            if len(fields) != 4:
                raise ValueError
            user, item, rating, _ = (int(f) for f in fields)
        except ValueError:
            raise ValueError(
                f"movielens100k: {str(path)!r} line {number} is {line[:60]!r}; expected 4 tab-separated integers "
                "user, item, rating, timestamp"
            ) from None
        if user < 1 or item < 1 or not 1 <= rating <= 5:
            raise ValueError(
                f"movielens100k: {str(path)!r} line {number}: ids start at 1 and ratings are 1-5, got {line!r}"
            )
        users.append(user - 1)
        items.append(item - 1)
    if not users:
        raise ValueError(f"movielens100k: {str(path)!r} holds no ratings")
    u, i = torch.tensor(users), torch.tensor(items)
    return split_interactions("movielens100k", u, i, int(u.max()) + 1, int(i.max()) + 1)


def synthetic_interactions(
    num_users: int = 200, num_items: int = 300, groups: int = 5, density: float = 0.08, seed: int = 0
) -> Interactions:
    """Users and items in ``groups`` taste groups; a user likes items of its own group ``density``·``groups`` times
    as often as others (a low-rank, community-structured graph that a popularity ranking cannot explain)."""
    check_int(groups, "groups", "synthetic_interactions")
    check_number(density, "density", "synthetic_interactions", high=1.0)
    generator = torch.Generator().manual_seed(seed)
    user_group = torch.randint(0, groups, (num_users,), generator=generator)
    item_group = torch.randint(0, groups, (num_items,), generator=generator)
    popularity = torch.rand(num_items, generator=generator) * 0.5 + 0.5  # (items,): a mild popularity skew
    same = user_group[:, None] == item_group[None, :]  # (users, items)
    probability = torch.where(same, density * 3.0, density * 0.15) * popularity
    liked = torch.rand(num_users, num_items, generator=generator) < probability
    users, items = torch.nonzero(liked, as_tuple=True)
    return split_interactions("synthetic", users, items, num_users, num_items, seed)


@DATASETS.register("synthetic-ratings", kind="recommend", dims=(1,))
def load_synthetic_ratings(split: str = "train", root: str | Path | None = None) -> Interactions:
    """200 users × 300 items in 5 taste groups (seeded, no download): the embedded recommendation data."""
    if root is not None:
        raise ValueError(f"synthetic-ratings: is generated and takes no data folder, got {str(root)!r}")
    return synthetic_interactions()
