"""The predictor: the original's pipeline around the network, and the two-call API."""
import numpy as np
import pytest
import torch
from conftest import load_fixture, shared_path

from isegm.build import MODEL_REGISTRY
from isegm.inference.clicker import Click, Clicker
from isegm.inference.predictor import EMCClickPredictor
from isegm.inference.predictors import get_predictor
from isegm.inference.utils import load_is_model
from isegm.model.is_model import Correction
from isegm.utils.errors import InputError


class ReplayNet(torch.nn.Module):
    """Stands in for the network's two stages: checks what the predictor feeds them, returns the
    reference logits of each call."""

    def __init__(self, ref):
        super().__init__()
        self.ref, self.calls = ref, 0
        self.eval()

    def encode(self, image, points):
        assert self.calls == 0, "the backbone stage runs on the first click only"
        assert list(image.shape) == self.ref["net_input_shape"][0]
        assert torch.allclose(image[:1, :, ::4, ::4], self.ref["net_input_s0_stride4"][0], atol=1e-6)
        assert torch.equal(points, self.ref["points"][0])  # float64, exact
        return "embedding"

    def correct(self, embedding, points, prev=None, attention="exact"):
        k, self.calls = self.calls, self.calls + 1
        assert embedding == "embedding" and attention == "exact"
        assert torch.equal(points, self.ref["points"][k])
        assert (prev is not None) == self.ref["cached"][k]
        logits = self.ref.get(f"logits_click{k + 1}")
        if logits is None:  # no stored logits for clicks 2-3: any finite map keeps the chain going
            logits = torch.zeros(self.ref["net_input_shape"][k][:1] + [1] + self.ref["net_input_shape"][k][2:])
        return Correction(logits=logits, logits_lr=self.ref["instances_lr_after"][k], clicks=None)


@pytest.fixture(scope="module")
def pio():
    return load_fixture("predictor_io.pt")


@pytest.mark.parametrize("size", [384, 576])
def test_pipeline_around_the_network(pio, size):
    ref = pio[f"ts{size}"]
    net = ReplayNet(ref)
    predictor = get_predictor(net, "EMC-Click", "cpu", zoom_in_params={"target_size": size, "expansion_ratio": 1.4})
    predictor.set_image(pio["image_uint8_hwc"].numpy())
    assert list(predictor.input_size) == ref["net_input_hw"]
    for k in range(4):
        probs = predictor.predict([tuple(c) for c in pio["clicks"][: k + 1]])
        assert probs.shape == (301, 457) and probs.dtype == np.float32
        if k in (0, 3):
            assert np.abs(probs - ref["prob"][k].numpy()).max() <= 1e-6
    assert net.calls == 4


@pytest.mark.parametrize("size", [384, 576])
def test_first_click_with_the_network(pio, size):
    """End to end on click 1; the hr18s backbone carries ~2e-4 of float32 noise (test_fixtures.py)."""
    model = load_is_model(shared_path("fixtures", "hr18s_random.pth"), "cpu")
    predictor = get_predictor(model, "EMC-Click", "cpu", zoom_in_params={"target_size": size})
    predictor.set_image(pio["image_uint8_hwc"].numpy())
    diff = np.abs(predictor.predict([tuple(pio["clicks"][0])]) - pio[f"ts{size}"]["prob"][0].numpy())
    assert diff.max() <= 5e-4 and diff.mean() <= 1e-4


def test_io_fixture_probabilities_without_flip():
    io = load_fixture("segb0_io.pt")
    model = load_is_model(shared_path("fixtures", "segb0_random.pth"), "cpu")
    predictor = EMCClickPredictor(model, "cpu", with_flip=False)
    predictor.set_image(io["image_uint8_hwc"].numpy())
    clicker = Clicker()
    clicker.add_click(Click(True, (190, 250)))
    a = predictor.get_prediction(clicker)
    assert np.abs(a - io["a_prediction_prob"].numpy()).max() <= 1e-4
    clicker.add_click(Click(True, (150, 300)))
    clicker.add_click(Click(False, (300, 420)))
    b = predictor.get_prediction(clicker)  # two clicks in one step, as the fixture's call (b)
    assert np.abs(b - io["b_prediction_prob"].numpy()).max() <= 5e-4  # chained call: see test_fixtures.py


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    model = MODEL_REGISTRY["hr18s"](init=False)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):  # non-zero biases: the output depends on every click
                param.normal_(0, 0.1)
    return model.eval()


def _image(h=61, w=83):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)


def test_two_call_api_undo_and_reset(small_model):
    predictor = EMCClickPredictor(small_model, "cpu", infer_size=64)
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict([(3, 4, True)])
    predictor.set_image(_image())
    clicks = [(30, 40, True), (10, 10, False), (50, 70, True)]
    p1 = predictor.predict(clicks[:1])
    p2 = predictor.predict(clicks[:2])
    p3 = predictor.predict(clicks)
    assert p1.shape == (61, 83) and 0 <= p3.min() and p3.max() <= 1
    assert not np.array_equal(p2, p3)
    assert np.array_equal(predictor.predict(clicks[:2]), p2)          # undo
    assert np.array_equal(predictor.predict(clicks), p3)              # redo gives the same chain
    assert np.array_equal(predictor.predict([]), np.zeros((61, 83), np.float32))
    other = EMCClickPredictor(small_model, "cpu", infer_size=64)
    other.set_image(_image())
    assert np.array_equal(other.predict(clicks), p3)                  # several new clicks = one at a time
    other.reset()
    assert np.array_equal(other.predict([Click(True, (30, 40))]), p1)


def test_ritm_calls_match_the_two_call_api(small_model):
    predictor = EMCClickPredictor(small_model, "cpu", infer_size=64)
    predictor.set_input_image(_image())
    gt = np.zeros((61, 83), np.int32)
    gt[20:45, 25:60] = 1
    clicker, pred = Clicker(gt_mask=gt), np.zeros((61, 83), bool)
    probs = []
    for _ in range(3):
        clicker.make_next_click(pred)
        probs.append(predictor.get_prediction(clicker))
        pred = probs[-1] > 0.49
    twin = EMCClickPredictor(small_model, "cpu", infer_size=64)
    twin.set_image(_image())
    clicks = [(c.coords[0], c.coords[1], c.is_positive) for c in clicker.get_clicks()]
    assert np.array_equal(twin.predict(clicks), probs[-1])


@pytest.mark.parametrize("image", [
    np.zeros((40, 50), np.uint8),            # grayscale
    np.zeros((40, 50, 4), np.uint8),         # RGBA
])
def test_grayscale_and_rgba_images(small_model, image):
    predictor = EMCClickPredictor(small_model, "cpu", infer_size=48)
    predictor.set_image(image)
    assert predictor.predict([(20, 20, True)]).shape == (40, 50)


@pytest.mark.parametrize("image,message", [
    (np.zeros((40, 50, 2), np.uint8), "H x W x 3"),
    (np.zeros((40, 50, 3), np.float32), "uint8"),
])
def test_bad_images(small_model, image, message):
    with pytest.raises(ValueError, match=message):
        EMCClickPredictor(small_model, "cpu").set_image(image)


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown predictor mode 'NoBRS'"):
        get_predictor(torch.nn.Identity(), "NoBRS", "cpu")


@pytest.mark.parametrize("click,message", [
    ((-1, 10, True), r"click 0 at \(y=-1, x=10\) is outside the 61x83 image \(0 <= y <= 60, 0 <= x <= 82\)"),
    ((61, 10, True), r"click 0 at \(y=61, x=10\) is outside"),
    ((10, 82.5, True), r"click 0 at \(y=10, x=82.5\) is outside"),
    ((float("nan"), 10, True), r"click 0 at \(y=nan, x=10\) is outside"),
    ((10, float("inf"), False), r"click 0 at \(y=10, x=inf\) is outside"),
    ((10, 10, "False"), r"click 0: is_positive must be a bool \(or 0 / 1\), got 'False'"),
    ((10, 10, float("nan")), r"is_positive must be a bool .*got nan"),
    ((10, 10, 2), r"is_positive must be a bool .*got 2"),
    (("a", 10, True), r"click 0: coordinates must be two numbers"),
    ((10, 10), r"click 0 must be a Click or a \(y, x, is_positive\) tuple"),
])
def test_bad_clicks_are_refused(small_model, click, message):
    predictor = EMCClickPredictor(small_model, "cpu", infer_size=64)
    predictor.set_image(_image())
    with pytest.raises(InputError, match=message):
        predictor.predict([click])
    with pytest.raises(InputError, match=message.replace("click 0", "click 1")):
        predictor.predict([(30, 40, True), click])
    if len(click) == 3:   # the same click from a RITM Clicker
        clicker = Clicker()
        clicker.add_click(Click(True, (5, 5)))
        clicker.add_click(Click(click[2], click[:2]))
        with pytest.raises(InputError, match=message.replace("click 0", "click 1")):
            predictor.get_prediction(clicker)


def test_accepted_click_signs(small_model):
    predictor = EMCClickPredictor(small_model, "cpu", infer_size=64)
    predictor.set_image(_image())
    reference = predictor.predict([(30, 40, True), (10, 10, False)])
    for positive, negative in ((1, 0), (np.bool_(True), np.bool_(False)), (np.int64(1), np.int64(0))):
        assert np.array_equal(predictor.predict([(30, 40, positive), (10, 10, negative)]), reference)
    assert predictor.predict([(0, 0, True), (60, 82, False)]).shape == (61, 83)   # the corners are inside


def test_a_model_in_train_mode_is_used_in_eval_mode(caplog):
    torch.manual_seed(0)
    model = MODEL_REGISTRY["hr18s"](init=False)
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    with caplog.at_level("WARNING", logger="isegm"):
        predictor = EMCClickPredictor(model, "cpu", infer_size=64)
    assert not model.training and "switching it to eval mode" in caplog.text
    predictor.set_image(_image())
    predictor.predict([(30, 40, True), (10, 10, False)])
    assert all(torch.equal(model.state_dict()[k], v) for k, v in stats.items())   # batch statistics untouched


def test_sizes_the_network_cannot_take(small_model):
    with pytest.raises(InputError, match=r"infer_size .* must be an integer of at least 32, got 3"):
        EMCClickPredictor(small_model, "cpu", infer_size=3)
    predictor = EMCClickPredictor(small_model, "cpu", infer_size=384)
    with pytest.raises(InputError, match=r"a 10x10000 image needs a 384x384000 network input .* limit of 16\.8 Mpx"):
        predictor.set_image(np.zeros((10, 10000, 3), np.uint8))
    wide = EMCClickPredictor(MODEL_REGISTRY["hr18"](init=False).eval(), "cpu", infer_size=32)
    with pytest.raises(InputError, match=r"network input 32x32 is too small for this model: .* 96 templates "
                                         r"among the \(H/4\) x \(W/4\) = 64 pixels"):
        wide.set_image(np.zeros((40, 40, 3), np.uint8))


def test_previous_mask_of_another_size(small_model):
    predictor = EMCClickPredictor(small_model, "cpu", infer_size=64)
    predictor.set_image(_image())
    with pytest.raises(InputError, match=r"previous mask of shape \(61, 82\) does not fit the 61x83 image"):
        predictor.set_prev_mask(np.zeros((61, 82), np.float32))
    predictor.set_prev_mask(np.ones((61, 83), np.float32))
    assert predictor.predict([(30, 40, True)]).shape == (61, 83)
