"""The variant table is the single source of the five networks: builder, configs and README agree with it."""
import importlib.util

import pytest
from conftest import REPO, load_spec

from isegm.build import MODEL_REGISTRY, list_models
from isegm.model.variants import VARIANTS, get_variant, variant_of
from isegm.utils.errors import ConfigKeyError


def test_registry_follows_the_table():
    assert list_models() == [v.name for v in VARIANTS] == list(MODEL_REGISTRY)
    with pytest.raises(ConfigKeyError, match=r"unknown EMC-Click model 'hr64'; choose one of \['hr18s'"):
        get_variant("hr64")


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_config_script_and_readme_row(variant):
    spec = importlib.util.spec_from_file_location("config", REPO / variant.config)
    config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config)
    assert config.VARIANT == variant.name
    model = variant.build(init=False)
    params = sum(p.numel() for p in model.parameters())
    row = f"| `{variant.name}` | {variant.title} | {variant.mid_dims} | {params:,} | `{variant.config}` |"
    assert row in (REPO / "README.md").read_text(), row
    assert variant_of(model._config) is variant


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_the_released_config_is_recognised(variant):
    spec = load_spec(variant.name)
    assert variant_of(spec["config"]) is variant
