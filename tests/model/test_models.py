"""The five networks: checkpoint-exact layout and config, forward contract on CPU."""
import json

import pytest
from conftest import VARIANTS, load_spec

from isegm.build import MODEL_REGISTRY, build_emc_click
from isegm.utils.serialization import load_model


def _layout(model):
    return [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in model.state_dict().items()]


@pytest.fixture(scope="module", params=VARIANTS)
def built(request):
    return request.param, MODEL_REGISTRY[request.param](init=False)


def test_state_dict_layout_matches_spec(built):
    name, model = built
    spec = load_spec(name)
    expected = [[k, shape, dtype] for k, shape, dtype, _ in spec["state_dict"]]
    assert _layout(model) == expected
    assert sum(p.numel() for p in model.parameters()) == spec["num_parameters"]


def test_config_matches_spec(built):
    name, model = built
    spec = load_spec(name)
    config = json.loads(json.dumps(model._config))  # tuples -> lists, as the spec encodes them
    assert config["class"] == spec["model_class"] == spec["config"]["class"]
    specified = {k: v for k, v in spec["config"]["params"].items() if v["specified"]}
    ours = {k: v for k, v in config["params"].items() if v["specified"]}
    assert list(ours.items()) == list(specified.items())  # values, flags and call order
    assert config == spec["config"]  # unspecified defaults too (may differ by design, but do not here)


def test_rebuild_from_spec_config(built):
    name, model = built
    spec = load_spec(name)
    config = spec["config"]
    rebuilt = load_model(config)
    assert type(rebuilt) is type(model)
    assert _layout(rebuilt) == _layout(model)


def test_aliases_share_one_block(built):
    _, model = built
    r = model.refiner
    assert r.corr_conv_pos is r.corr_conv and r.corr_conv_neg is r.corr_conv
    sd = model.state_dict()
    assert sd["refiner.corr_conv_pos.conv1x1.weight"].data_ptr() == sd["refiner.corr_conv.conv1x1.weight"].data_ptr()


def test_unknown_variant_is_named():
    with pytest.raises(KeyError, match="unknown EMC-Click model 'hr64'"):
        build_emc_click("hr64")
