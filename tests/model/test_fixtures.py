"""Numerical faithfulness: the original code's outputs on the shared fixtures are reproduced.

The fixtures were made on a CPU whose float32 kernels round differently from this machine's
(a literal transcription of the original refiner, fed the fixture's own inputs, lands 7e-6 to
9e-5 away here). Two consequences are pinned down below rather than hidden:

* the random hr18s checkpoint amplifies float32 noise in its backbone: our float32 and float64
  runs differ by 1.9e-4, and the float64 run is 1.1e-4 from the reference, so the reference itself
  carries ~1e-4 of rounding; its backbone outputs are checked at that noise level;
* the refiner picks its K templates with ``topk`` and feeds them to per-channel weights in topk
  order, so two templates whose scores are 1-2 ulp apart can swap and change the output by O(1)
  (seen on the seeded hr18 call (b): templates 9318/9321, scores 1.04783463 vs 1.04783452).
  Chained calls are therefore checked with the reference's cache or template order forced in,
  which isolates every other operation of the chain.
"""
import importlib.util

import pytest
import torch
from conftest import load_fixture, max_abs_diff, shared_path

from isegm.build import build_emc_click
from isegm.inference.utils import load_is_model
from isegm.model.refiner import AttRefineAfterLayer

TOL = 1e-4
BACKBONE_KEYS = ("feature", "instances", "instances_aux", "click_map")


@pytest.fixture(scope="module", params=["hr18s", "segb0"])
def case(request):
    name = request.param
    return name, load_is_model(shared_path("fixtures", f"{name}_random.pth"), "cpu"), load_fixture(f"{name}_io.pt")


def test_first_click_backbone(case):
    name, model, io = case
    with torch.no_grad():
        out, _ = model(io["a_image"], io["a_points"])
    for key in BACKBONE_KEYS:
        diff = max_abs_diff(out[key], io["a_outputs"][key])
        mean = (out[key] - io["a_outputs"][key]).abs().mean().item()
        print(f"{name} a_outputs.{key}: max {diff:.2g} mean {mean:.2g}")
        if name == "hr18s":  # the reference's own float32 rounding is ~1e-4 here (module docstring)
            assert diff <= 5 * TOL and mean <= 0.5 * TOL, key
        else:
            assert diff <= TOL, key


def test_refiner_reproduces_both_calls(case):
    """Both calls of the fixture, each fed the reference's inputs (backbone logits, then cache)."""
    name, model, io = case
    ref_a, ref_b = io["a_refine"]["instances_refined"], io["b_refine"]["instances_refined"]
    with torch.no_grad():
        cache = {k: io["a_outputs"][k].clone() for k in BACKBONE_KEYS}
        out_a, ra = model(io["a_image"], io["a_points"], cache, cached_instances_lr=io["a_backbone_logits_lr"])
        lr_a = out_a["instances_lr"]
        cache = {k: v.clone() for k, v in io["a_outputs"].items()}
        out_b, rb = model(io["b_image"], io["b_points"], cache)
    assert out_b["feature"] is cache["feature"]   # the backbone did not run again
    assert torch.equal(cache["instances_lr"], io["a_outputs"]["instances_lr"])   # nor was the cache modified
    for label, got, want in (("a_refine", ra["instances_refined"], ref_a), ("a_outputs.instances_lr", lr_a,
                             io["a_outputs"]["instances_lr"]), ("b_refine", rb["instances_refined"], ref_b),
                             ("b_outputs.instances_lr", out_b["instances_lr"], io["b_outputs"]["instances_lr"])):
        print(f"{name} {label}: max {max_abs_diff(got, want):.2g}")
        # values reach |x| = 87 (segb0, call b): allow float32's relative rounding on top of 1e-4
        assert torch.allclose(got, want, rtol=1e-5, atol=TOL), label


def test_segb0_end_to_end_chain():
    """segb0's backbone is quiet enough for the whole chain to run from the image alone."""
    model = load_is_model(shared_path("fixtures", "segb0_random.pth"), "cpu")
    io = load_fixture("segb0_io.pt")
    with torch.no_grad():
        out_a, ra = model(io["a_image"], io["a_points"])
        pa = torch.sigmoid(ra["instances_refined"][0, 0])
        out_b, rb = model(io["b_image"], io["b_points"], out_a)
    assert max_abs_diff(pa, io["a_prediction_prob"]) <= TOL
    assert max_abs_diff(ra["instances_refined"], io["a_refine"]["instances_refined"]) <= TOL
    for got, want in ((rb["instances_refined"], io["b_refine"]["instances_refined"]),
                      (out_b["instances_lr"], io["b_outputs"]["instances_lr"])):
        print("segb0 chained call b: max", max_abs_diff(got, want))
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-3)
    assert max_abs_diff(torch.sigmoid(rb["instances_refined"][0, 0]), io["b_prediction_prob"]) <= 5 * TOL


def _seeded_model():
    spec = importlib.util.spec_from_file_location("seeded_weights",
                                                  shared_path("fixtures", "seeded", "seeded_weights.py"))
    seeded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seeded)
    io = load_fixture("seeded", "hr18.pt")
    model = build_emc_click("hr18", init=False)
    seeded.fill_state_dict(model, io["meta"]["seed"])
    return model.eval(), io


def test_seeded_hr18_fixture(monkeypatch):
    """HRNet-W18 (the non-small path) with name-seeded weights, against the original's outputs."""
    model, io = _seeded_model()
    state = model.state_dict()
    for key, total in io["checksum_all_sums"].items():
        assert state[key].double().sum().item() == pytest.approx(total, rel=1e-6, abs=1e-6), key

    chosen, reference = [], iter(io["meta"]["topk_a"] + io["meta"]["topk_b"])
    select = AttRefineAfterLayer.select_templates

    def forced(self, fuse, cells, dist, graph=False):
        ours = select(self, fuse, cells, dist)
        refs = []
        for idx in ours:
            ref = next(reference)
            k = ref["k"]
            ref_idx = torch.tensor(ref["top_k1_indices"][:k])
            # Same template set; order may differ only where reference scores are 1-2 ulp apart.
            assert set(idx[0].tolist()) == set(ref_idx.tolist())
            chosen.append((idx[0], ref_idx, ref["top_k1_scores"][:k]))
            refs.append(ref_idx[None])
        return tuple(refs)

    monkeypatch.setattr(AttRefineAfterLayer, "select_templates", forced)
    rgb = io["image_uint8_hwc"].permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        oa, ra = model(torch.cat([rgb, torch.zeros_like(rgb[:, :1])], 1), io["a_points"])
        a_inst, a_aux = oa["instances"].clone(), oa["instances_aux"].clone()
        _, rb = model(torch.cat([rgb, io["b_prev_mask"]], 1), io["b_points"], oa)
    assert len(chosen) == 4
    for ours, ref_idx, scores in chosen:
        for i in torch.nonzero(ours != ref_idx).flatten().tolist():
            j = ref_idx.tolist().index(ours[i].item())
            assert abs(scores[i] - scores[j]) <= 4e-7, (i, j)
    s = (..., slice(None, None, 2), slice(None, None, 2))
    assert max_abs_diff(a_inst[s], io["a_instances"]) <= TOL
    assert max_abs_diff(a_aux[s], io["a_instances_aux"]) <= TOL
    for got, key in ((ra["instances_refined"], "a_instances_refined"),
                     (rb["instances_refined"], "b_instances_refined")):
        print(key, max_abs_diff(got[s], io[key]))
        assert torch.allclose(got[s], io[key], rtol=1e-4, atol=1e-3), key
