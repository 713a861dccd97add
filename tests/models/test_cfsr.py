import torch

from convzoo.deploy.reparam import reparameterize
from convzoo.models.cfsr import EdgeDepthwise
from convzoo.models.registration import create_model


def test_edge_branches_fold_into_the_large_kernel():
    torch.manual_seed(0)
    layer = EdgeDepthwise(4, 7).double().eval()
    torch.nn.init.normal_(layer.edge_scale)
    x = torch.randn(2, 4, 9, 9, dtype=torch.float64)
    before = layer(x)
    layer.reparameterize()
    torch.testing.assert_close(layer(x), before)
    assert layer.small is None and sum(p.numel() for p in layer.parameters()) == 4 * 49 + 4


def test_deploy_form_equals_the_training_form():
    torch.manual_seed(0)
    model = create_model("cfsr", width=8, depths=(1, 1), kernel_size=5).double().eval()
    for module in model.modules():
        if isinstance(module, EdgeDepthwise):
            torch.nn.init.normal_(module.edge_scale)
    x = torch.rand(1, 3, 10, 10, dtype=torch.float64)
    torch.testing.assert_close(reparameterize(model)(x), model(x))
