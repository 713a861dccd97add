"""A checkpoint at work: evaluate_checkpoint, predict, and evaluate's fixed-batch and callable forms."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from convzoo.data import load_dataset
from convzoo.train import TrainConfig, evaluate, evaluate_checkpoint, predict, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(model="resnet20", cfg={"layers": (1, 1, 1)}, epochs=1, out=str(out), progress=False)
    return train(config)


def test_the_result_describes_the_data_it_was_trained_on(trained):
    assert trained.data.name == "digits" and trained.data.split == "test"
    assert trained.input_shape == (1, 1, *trained.data.image_size)


def test_evaluate_checkpoint_repeats_the_last_epochs_test_accuracy(trained):
    result = evaluate_checkpoint(trained.checkpoint)
    assert result.data == "digits" and result.images == len(load_dataset("digits", "test"))
    assert result.accuracy == pytest.approx(trained.test_accuracy) and result.loss == pytest.approx(trained.test_loss)
    assert "resnet20" in result.model


def test_evaluate_checkpoint_refuses_other_class_counts(trained, tmp_path):
    with pytest.raises(ValueError, match=r"digits has 10 classes but the checkpoint's model has 3"):
        _evaluate_with_classes(trained, tmp_path, 3)


def _evaluate_with_classes(trained, tmp_path, classes):
    from convzoo.models import create_model
    from convzoo.train import read_checkpoint, save_checkpoint

    saved = read_checkpoint(trained.checkpoint)
    architecture = {**saved.architecture, "num_classes": classes}
    model = create_model("resnet20", num_classes=classes, in_chans=1, layers=(1, 1, 1))
    path = save_checkpoint(tmp_path / "checkpoint", model, architecture, data=saved.meta["data"])
    return evaluate_checkpoint(path)


def test_predict_reads_image_files_as_the_training_images_were(trained, tmp_path):
    test = load_dataset("digits", "test")
    info = test.info
    pixels = test.images[0, 0] * info.std[0] + info.mean[0]  # (H, W) back in [0, 1]
    path = tmp_path / "digit.png"
    Image.fromarray((pixels.clamp(0, 1) * 255).round().to(torch.uint8).numpy()).save(path)
    (prediction,) = predict(trained.checkpoint, [path], top_k=3)
    assert prediction.image == str(path) and len(prediction.top) == 3
    probabilities = [p for _, p in prediction.top]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-6
    assert {name for name, _ in prediction.top} <= set(info.class_names)
    with pytest.raises(FileNotFoundError, match=r"no image file '.*nothing\.png'"):
        predict(trained.checkpoint, [tmp_path / "nothing.png"])
    with pytest.raises(ValueError, match=r"predict: top_k must be a positive int, got 0"):
        predict(trained.checkpoint, [path], top_k=0)


def test_evaluate_pads_the_last_batch_for_fixed_batch_forms(trained):
    test = load_dataset("digits", "test")
    model = trained.model.eval()
    seen = []

    def fixed(images):  # a deploy form specialised to batch 64
        seen.append(images.shape[0])
        assert images.shape[0] == 64
        return model(images)

    assert len(test) % 64 != 0
    assert evaluate(fixed, test, 64, fixed_batch=True) == pytest.approx(evaluate(model, test, 64))
    assert set(seen) == {64} and not model.training
