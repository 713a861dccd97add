"""Training recipes of ``convzoo study --recipe``, among them the CIFAR schedule of the ResNet paper (He et al.).

``digits-quick`` is the trainer's default recipe at 4 epochs of batch 32 (minutes on a CPU for the default ops).
``cifar-standard`` is the CIFAR-10 schedule of He et al., "Deep Residual Learning for Image Recognition" (CVPR
2016, section 4.2; the base family of ResNeXt, S68): SGD with (classical) momentum 0.9, weight decay 1e-4, batch
128, learning rate 0.1 divided by 10 at 32k and 48k iterations and stopped at 64k — at half and three quarters of
the 164 epochs of the 50k training images — no warm-up (the paper warms up only its 110-layer net), no label
smoothing, and the paper's augmentation: a random 32×32 crop of the image padded by 4 pixels, or of its mirror
(the classify task's ``augment=crop-flip``). The drops are fractions of training, so a shortened run
(``--epochs 20``) keeps the schedule's shape. The paper chose this schedule on a 45k/5k split and trains the
reported nets on all 50k images, as here; the test split is scored after every epoch and chooses nothing.
``--epochs``, ``--batch-size`` and ``--lr`` override a recipe's values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from convzoo.core.validate import check_choice

__all__ = ["RECIPES", "Recipe", "get_recipe"]


@dataclass(frozen=True)
class Recipe:
    """Fields of :class:`convzoo.train.TrainConfig` a study run takes from its recipe."""

    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    warmup_epochs: float
    label_smoothing: float
    summary: str
    departures: str = ""
    nesterov: bool = True
    schedule: str = "cosine"
    lr_steps: tuple[float, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)  # the classify task's options (augmentation)

    def train_fields(self) -> dict[str, object]:
        """The recipe as ``TrainConfig`` keyword arguments."""
        fields = asdict(self)
        fields.pop("summary")
        fields.pop("departures")
        return fields


RECIPES: dict[str, Recipe] = {
    "digits-quick": Recipe(
        epochs=4,
        batch_size=32,
        optimizer="sgd",
        lr=0.05,
        momentum=0.9,
        weight_decay=5e-4,
        warmup_epochs=0.2,
        label_smoothing=0.1,
        summary="SGD 0.05 (Nesterov 0.9, wd 5e-4), 0.2-epoch warm-up then cosine, label smoothing 0.1, "
        "batch 32, 4 epochs: the trainer's defaults, minutes on a CPU",
    ),
    "cifar-standard": Recipe(
        epochs=164,
        batch_size=128,
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        nesterov=False,
        weight_decay=1e-4,
        warmup_epochs=0.0,
        label_smoothing=0.0,
        schedule="step",
        lr_steps=(0.5, 0.75),
        options={"augment": "crop-flip", "pad": 4},
        summary="the ResNet paper's CIFAR schedule: SGD 0.1 (momentum 0.9), wd 1e-4, batch 128, ÷10 at half and "
        "three quarters of 164 epochs, 4-pixel pad-crop and flip",
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe ``name``; an unknown name raises naming the recipes there are."""
    check_choice(name, tuple(RECIPES), "recipe", "study")
    return RECIPES[name]
