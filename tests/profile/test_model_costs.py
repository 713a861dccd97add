"""model_costs(): counted and published parameters and MACs of the registered models (`convzoo models`)."""

from __future__ import annotations

from convzoo.profile.model_costs import model_costs


def test_resnet50_counts_as_published():
    (cost,) = model_costs("resnet50")
    assert cost.kind == "classify" and cost.input_size == (3, 224, 224)
    assert round(cost.params / 1e4) == round(cost.published_params / 1e4) == 2556
    assert round(cost.macs / 1e7) == 409  # 4.09 GMACs at 224x224, as torchvision publishes


def test_a_glob_without_macs():
    costs = model_costs("resnet5*", macs=False)
    assert [c.name for c in costs] == sorted(c.name for c in costs) and "resnet56" in [c.name for c in costs]
    assert all(c.macs is None and c.params > 0 for c in costs)
    assert model_costs("no_such_model*") == []
