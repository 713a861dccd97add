import pytest
import torch

from convzoo.layers.lora import LoRAConv
from convzoo.models.registration import create_model
from convzoo.models.span import spatial_affinity, spatial_affinity_loss


def test_dsclora_trains_only_its_adapters_and_starts_equal_to_span():
    torch.manual_seed(0)
    student = create_model("dsclora", width=8, blocks=2)
    trainable = [n for n, p in student.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert sum(isinstance(m, LoRAConv) for m in student.modules()) == 3 * 2 + 2
    x = torch.rand(1, 3, 8, 8)
    base = create_model("span", width=8, blocks=2)
    plain = {
        k.replace(".conv.weight", ".weight").replace(".conv.bias", ".bias"): v for k, v in student.state_dict().items()
    }
    base.load_state_dict({k: v for k, v in plain.items() if "lora_" not in k})
    torch.testing.assert_close(student(x), base(x))


def test_spatial_affinity_distillation():
    torch.manual_seed(0)
    teacher_feats = [torch.randn(2, 12, 4, 4)]
    student_feats = [torch.randn(2, 5, 4, 4, requires_grad=True)]
    affinity = spatial_affinity(teacher_feats[0])
    assert affinity.shape == (2, 16, 16)
    torch.testing.assert_close(affinity.diagonal(dim1=1, dim2=2), torch.ones(2, 16))
    loss = spatial_affinity_loss(student_feats, teacher_feats)
    loss.backward()
    assert loss > 0 and student_feats[0].grad is not None
    assert spatial_affinity_loss(teacher_feats, teacher_feats) == 0
    with pytest.raises(ValueError, match="matching feature lists"):
        spatial_affinity_loss(student_feats, [])


def test_features_for_distillation():
    model = create_model("span", width=8, blocks=3)
    image, features = model(torch.rand(1, 3, 6, 6), return_features=True)
    assert image.shape == (1, 3, 24, 24) and len(features) == 3
