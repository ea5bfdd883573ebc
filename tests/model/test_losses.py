"""Training losses against straightforward float64 re-computations of training.md section 9."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from isegm.model.losses import WFNL, NormalizedFocalLossSigmoid, SigmoidBinaryCrossEntropyLoss

EPS = 1e-12


def make_case(seed: int, shape=(3, 1, 5, 6), ignore_frac: float = 0.2, scale: float = 3.0):
    """Random logits (``scale`` std) and a 0/1 label with a fraction ``ignore_frac`` of ignore (-1) pixels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * scale
    y = (torch.rand(shape, generator=g) > 0.5).float()
    y[torch.rand(shape, generator=g) < ignore_frac] = -1
    return x, y


def ref_focal_per_pixel(x, y, alpha, gamma, from_sigmoid=False, max_mult=-1.0):
    """Per-pixel normalised focal loss of one (b, c) plane, python loops in float64; returns (loss, v, mult)."""
    h, w = x.shape
    p = x if from_sigmoid else 1.0 / (1.0 + np.exp(-x))
    valid = (y != -1).astype(np.float64)
    pt = np.ones((h, w))
    a = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            if valid[i, j]:
                pt[i, j] = 1.0 - abs(y[i, j] - p[i, j])
                a[i, j] = alpha if y[i, j] > 0.5 else 1.0 - alpha
    beta = (1.0 - pt) ** gamma
    mult = valid.sum() / (beta.sum() + EPS)
    nbeta = beta * mult
    if max_mult > 0:
        nbeta = np.minimum(nbeta, max_mult)
    loss = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            loss[i, j] = -a[i, j] * nbeta[i, j] * math.log(min(pt[i, j] + EPS, 1.0)) * valid[i, j]
    return loss, valid, mult, nbeta


def ref_nfl(x, y, alpha=0.25, gamma=2, size_average=True, **kw):
    x, y = x.double().numpy(), y.double().numpy()
    out = []
    for b in range(x.shape[0]):
        num, den = 0.0, 0.0
        for c in range(x.shape[1]):
            loss, valid, _, _ = ref_focal_per_pixel(x[b, c], y[b, c], alpha, gamma, **kw)
            num += loss.sum()
            den += valid.sum()
        out.append(num / (den + EPS) if size_average else num)
    return np.array(out)


def ref_bce(x, y, from_sigmoid=False):
    x, y = x.double().numpy(), y.double().numpy()
    out = []
    for b in range(x.shape[0]):
        total = 0.0
        for idx in np.ndindex(x.shape[1:]):
            t = y[b][idx]
            if t == -1:
                continue
            p = x[b][idx] if from_sigmoid else 1.0 / (1.0 + math.exp(-x[b][idx]))
            total += -(t * math.log(p + (EPS if from_sigmoid else 0.0))
                       + (1 - t) * math.log(1 - p + (EPS if from_sigmoid else 0.0)))
        out.append(total / np.prod(x.shape[1:]))   # ignored pixels stay in the denominator
    return np.array(out)


class FakeWriter:
    def __init__(self):
        self.calls = []

    def add_scalar(self, tag, value, global_step=None):
        self.calls.append((tag, value, global_step))


# ----------------------------------------------------------------------------------------------- NFL / WFNL

@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha,gamma", [(0.5, 2), (0.25, 2), (0.5, 1)])
@pytest.mark.parametrize("cls", [NormalizedFocalLossSigmoid, WFNL])
def test_focal_matches_formula(cls, seed, alpha, gamma):
    x, y = make_case(seed)
    loss = cls(alpha=alpha, gamma=gamma)(x, y)
    assert loss.shape == (3,) and loss.dtype == torch.float32
    np.testing.assert_allclose(loss.double().numpy(), ref_nfl(x, y, alpha, gamma), rtol=2e-5, atol=1e-7)


def test_focal_multichannel_and_size_average_false():
    x, y = make_case(3, shape=(2, 2, 4, 5), ignore_frac=0.3)
    # mult is per (b, c) plane; the per-sample sums run over C, H, W
    np.testing.assert_allclose(NormalizedFocalLossSigmoid(alpha=0.5)(x, y).numpy(), ref_nfl(x, y, 0.5, 2),
                               rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(NormalizedFocalLossSigmoid(alpha=0.5, size_average=False)(x, y).numpy(),
                               ref_nfl(x, y, 0.5, 2, size_average=False), rtol=2e-5, atol=1e-6)
    # WFNL ignores size_average: always the per-sample average
    np.testing.assert_allclose(WFNL(alpha=0.5, size_average=False)(x, y).numpy(), ref_nfl(x, y, 0.5, 2),
                               rtol=2e-5, atol=1e-7)


def test_focal_from_sigmoid_and_max_mult():
    x, y = make_case(4, ignore_frac=0.0)
    p = torch.sigmoid(x)
    np.testing.assert_allclose(NormalizedFocalLossSigmoid(alpha=0.5, from_sigmoid=True)(p, y).numpy(),
                               ref_nfl(p, y, 0.5, 2, from_sigmoid=True), rtol=2e-5, atol=1e-7)
    clamped = NormalizedFocalLossSigmoid(alpha=0.5, max_mult=1.5)(x, y)
    np.testing.assert_allclose(clamped.numpy(), ref_nfl(x, y, 0.5, 2, max_mult=1.5), rtol=2e-5, atol=1e-7)
    assert not torch.allclose(clamped, NormalizedFocalLossSigmoid(alpha=0.5)(x, y))


def test_focal_constant_weight_scales_loss():
    x, y = make_case(5)
    base = NormalizedFocalLossSigmoid(alpha=0.5)(x, y)
    torch.testing.assert_close(NormalizedFocalLossSigmoid(alpha=0.5, weight=3.0)(x, y), 3 * base)


def test_focal_ignore_label():
    x, y = make_case(6, shape=(2, 1, 4, 4), ignore_frac=0.0)
    y[:, :, 0, :] = -1
    loss = NormalizedFocalLossSigmoid(alpha=0.5)(x, y)
    # the ignored row changes nothing: same as the loss on the 3 other rows alone
    torch.testing.assert_close(loss, NormalizedFocalLossSigmoid(alpha=0.5)(x[:, :, 1:], y[:, :, 1:]))
    # whatever the logits there
    x2 = x.clone()
    x2[:, :, 0, :] = torch.tensor([-30.0, 30.0, 0.0, 5.0])
    torch.testing.assert_close(NormalizedFocalLossSigmoid(alpha=0.5)(x2, y), loss)
    # another ignore label value
    y255 = torch.where(y == -1, torch.full_like(y, 255), y)
    torch.testing.assert_close(NormalizedFocalLossSigmoid(alpha=0.5, ignore_label=255)(x, y255), loss)


@pytest.mark.parametrize("cls", [NormalizedFocalLossSigmoid, WFNL])
def test_fully_ignored_sample_is_zero_with_finite_grad(cls):
    x, y = make_case(7, shape=(3, 1, 4, 5))
    y[1] = -1
    x.requires_grad_(True)
    loss = cls(alpha=0.5)(x, y)
    assert loss[1].item() == 0.0
    assert torch.isfinite(loss).all() and (loss[[0, 2]] > 0).all()
    loss.mean().backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[1] == 0).all()
    # a batch of only ignored pixels
    z = torch.zeros(2, 1, 3, 3, requires_grad=True)
    out = cls(alpha=0.5)(z, -torch.ones(2, 1, 3, 3))
    assert (out == 0).all()
    out.sum().backward()
    assert torch.isfinite(z.grad).all()


def test_nfl_casts_wfnl_keeps_dtype():
    x, y = make_case(8)
    assert NormalizedFocalLossSigmoid(alpha=0.5)(x.double(), y).dtype == torch.float32
    out = WFNL(alpha=0.5)(x.double(), y.double())
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), ref_nfl(x, y, 0.5, 2), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("seed", range(5))
def test_wfnl_without_weight_equals_nfl(seed):
    x, y = make_case(seed, shape=(2, 1, 8, 8), scale=6.0)
    if seed == 4:
        y[0] = -1
        x[1, 0, 0, 0], y[1, 0, 0, 0] = -17.8, 1.0   # the float32 quirk pixel behaves identically too
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    nfl, wfnl = NormalizedFocalLossSigmoid(alpha=0.5, gamma=2), WFNL(alpha=0.5, gamma=2)
    la, lb = nfl(xa, y), wfnl(xb, y)
    assert torch.equal(la, lb)
    la.mean().backward()
    lb.mean().backward()
    assert torch.equal(xa.grad, xb.grad)
    assert nfl._k_sum == wfnl._k_sum and nfl._m_max == wfnl._m_max


@pytest.mark.parametrize("w", [0.5, 0.2])
def test_wfnl_weight_map(w):
    x, y = make_case(9, shape=(2, 1, 4, 5))
    g = torch.Generator().manual_seed(1)
    weight = torch.rand(2, 1, 4, 5, generator=g)
    out = WFNL(alpha=0.5, gamma=2, w=w)(x, y, weight)
    assert out.dim() == 0
    xd, yd, wd = x.double().numpy(), y.double().numpy(), weight.double().numpy()
    num, den = 0.0, 0.0
    for b in range(2):
        loss, _, _, _ = ref_focal_per_pixel(xd[b, 0], yd[b, 0], 0.5, 2)
        wp = wd[b, 0] * w + (1 - w)
        num += (loss * wp).sum()
        den += wp.sum()   # includes the ignored pixels
    assert out.item() == pytest.approx(num / (den + EPS), rel=2e-5)


def test_bce_ignore_weight_in_denominator_is_not_plain_mean():
    x, y = make_case(10, shape=(1, 1, 2, 2), ignore_frac=0.0)
    y[0, 0, 0, 0] = -1
    out = SigmoidBinaryCrossEntropyLoss()(x, y)
    valid = y != -1
    plain = F.binary_cross_entropy_with_logits(x[valid], y[valid]).item()
    assert out.item() == pytest.approx(plain * 3 / 4, rel=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_bce_matches_formula(seed):
    x, y = make_case(seed, shape=(3, 2, 4, 5), scale=8.0)
    out = SigmoidBinaryCrossEntropyLoss()(x, y)
    assert out.shape == (3,)
    np.testing.assert_allclose(out.double().numpy(), ref_bce(x, y), rtol=1e-5, atol=1e-7)
    # label given without the channel dim is viewed as pred's shape
    x1, y1 = x[:, :1], y[:, 0]
    bce = SigmoidBinaryCrossEntropyLoss()
    torch.testing.assert_close(bce(x1, y1), bce(x1, y1[:, None]))
    p = torch.sigmoid(x)
    np.testing.assert_allclose(SigmoidBinaryCrossEntropyLoss(from_sigmoid=True)(p, y).double().numpy(),
                               ref_bce(p, y, from_sigmoid=True), rtol=1e-4, atol=1e-6)


def test_bce_large_logits_stable_and_ignored_sample():
    x = torch.tensor([[[[100.0, -100.0], [0.0, 50.0]]], [[[3.0, -3.0], [1.0, 1.0]]]], requires_grad=True)
    y = torch.tensor([[[[0.0, 1.0], [1.0, -1.0]]], [[[-1.0, -1.0], [-1.0, -1.0]]]])
    out = SigmoidBinaryCrossEntropyLoss()(x, y)
    assert out[0].item() == pytest.approx((100 + 100 + math.log(2)) / 4, rel=1e-6)
    assert out[1].item() == 0.0
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad[1] == 0).all() and x.grad[0, 0, 1, 1] == 0


# ------------------------------------------------------------------------------------- detached normaliser

def _torch_ref_focal(x, y, alpha, gamma, detach):
    """Float64 autograd reference of one-plane-per-sample NFL, normaliser detached or not."""
    v = (y != -1).double()
    p = torch.sigmoid(x)
    pt = torch.where(v.bool(), 1 - (y - p).abs(), torch.ones_like(p))
    a = torch.where(y > 0.5, alpha * v, (1 - alpha) * v)
    beta = (1 - pt) ** gamma
    mult = v.sum((-2, -1), keepdim=True) / (beta.sum((-2, -1), keepdim=True) + EPS)
    if detach:
        mult = mult.detach()
    loss = -a * beta * mult * torch.log(torch.clamp(pt + EPS, max=1.0)) * v
    return loss.sum((1, 2, 3)) / (v.sum((1, 2, 3)) + EPS)


@pytest.mark.parametrize("detach", [True, False])
def test_normaliser_detached_gradient(detach):
    x, y = make_case(11, shape=(2, 1, 4, 5))
    coef = torch.tensor([0.7, 1.3])
    xm = x.clone().requires_grad_(True)
    (NormalizedFocalLossSigmoid(alpha=0.5, detach_delimeter=detach)(xm, y) * coef).sum().backward()
    grads = {}
    for d in (True, False):
        xr = x.double().requires_grad_(True)
        (_torch_ref_focal(xr, y.double(), 0.5, 2, d) * coef.double()).sum().backward()
        grads[d] = xr.grad
    torch.testing.assert_close(xm.grad.double(), grads[detach], rtol=1e-4, atol=1e-7)
    assert (grads[True] - grads[False]).abs().max() > 1e-3   # the detach matters


def test_normaliser_gradcheck():
    x, y = make_case(12, shape=(1, 1, 3, 4), ignore_frac=0.2, scale=1.5)
    x = x.double().requires_grad_(True)
    y = y.double()
    # WFNL keeps float64, so finite differences apply: with the normaliser attached the gradient is the true
    # derivative; detached, it is not (the normaliser's dependence on x gets no gradient).
    assert torch.autograd.gradcheck(lambda t: WFNL(alpha=0.5, detach_delimeter=False)(t, y), (x,))
    assert not torch.autograd.gradcheck(lambda t: WFNL(alpha=0.5)(t, y), (x,), raise_exception=False)


# -------------------------------------------------------------------------------------- float32 focal quirk

def _quirk_case():
    g = torch.Generator().manual_seed(13)
    x = torch.randn(1, 1, 64, 64, generator=g)
    y = (torch.rand(1, 1, 64, 64, generator=g) > 0.5).float()
    x[0, 0, 10, 20], y[0, 0, 10, 20] = -17.8, 1.0
    return x, y


def _stable_focal(x, y, alpha=0.5, gamma=2):
    """pt = p for y=1 and sigmoid(-x) for y=0, log pt via logsigmoid: what the quirk is NOT."""
    v = (y != -1).float()
    pt = torch.where(y > 0.5, torch.sigmoid(x), torch.sigmoid(-x))
    log_pt = torch.where(y > 0.5, F.logsigmoid(x), F.logsigmoid(-x))
    a = torch.where(y > 0.5, alpha * v, (1 - alpha) * v)
    beta = (1 - pt) ** gamma
    mult = (v.sum((-2, -1), keepdim=True) / (beta.sum((-2, -1), keepdim=True) + EPS)).detach()
    loss = -a * beta * mult * log_pt * v
    return loss.sum((1, 2, 3)) / (v.sum((1, 2, 3)) + EPS)


def test_stable_formulation_agrees_on_ordinary_inputs():
    x, y = make_case(14, shape=(2, 1, 16, 16), ignore_frac=0.0)
    torch.testing.assert_close(NormalizedFocalLossSigmoid(alpha=0.5)(x, y), _stable_focal(x, y),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cls", [NormalizedFocalLossSigmoid, WFNL])
def test_float32_focal_quirk(cls):
    x, y = _quirk_case()
    xq = x.clone().requires_grad_(True)
    loss = cls(alpha=0.5, gamma=2)(xq, y)
    loss.sum().backward()
    grad = xq.grad[0, 0]

    # float32: 1 - |1 - sigmoid(-17.8)| is exactly 0, so the pixel's loss is log(eps) = -27.6, not -17.8
    p = torch.sigmoid(torch.tensor(-17.8))
    assert (1.0 - torch.abs(1.0 - p)).item() == 0.0
    # its gradient is ~ -alpha * 1e12 * p (1 - p) / sum(beta) (beta = 1 there): about -10 here
    with torch.no_grad():
        pt = torch.where(y > 0.5, torch.sigmoid(x), 1 - torch.sigmoid(x))
        beta_sum = ((1 - pt) ** 2).sum().item()
    expected = -0.5 * (1.0 / np.float32(EPS)) * p.item() * (1 - p.item()) / beta_sum
    assert grad[10, 20].item() == pytest.approx(expected, rel=1e-3)
    assert -20 < grad[10, 20].item() < -5
    others = grad.clone()
    others[10, 20] = 0
    assert others.abs().max().item() < 1e-3

    # the "stable" formulation: loss off by far more than float32 noise, and an ordinary tiny gradient
    xs = x.clone().requires_grad_(True)
    stable = _stable_focal(xs, y)
    stable.sum().backward()
    assert abs(loss.item() - stable.item()) / stable.item() > 1e-3
    assert abs(xs.grad[0, 0, 10, 20].item()) < 1e-3
    torch.testing.assert_close(others, _zero_at(xs.grad[0, 0], 10, 20), rtol=1e-3, atol=1e-8)


def _zero_at(t, i, j):
    t = t.clone()
    t[i, j] = 0
    return t


# ----------------------------------------------------------------------------------------- side statistics

def test_side_statistics_and_log_states():
    x, y = make_case(15, shape=(3, 1, 4, 5), ignore_frac=0.0)
    y[1, 0, 0, 0] = -1          # sample 1 has an ignore pixel: excluded from _k_sum, not from _m_max
    loss_fn = NormalizedFocalLossSigmoid(alpha=0.5)
    xd, yd = x.double().numpy(), y.double().numpy()
    mults, maxes = [], []
    for b in range(3):
        _, _, mult, nbeta = ref_focal_per_pixel(xd[b, 0], yd[b, 0], 0.5, 2)
        mults.append(mult)
        maxes.append(nbeta.max())
    k_step, m_step = (mults[0] + mults[2]) / 2, float(np.mean(maxes))

    loss_fn(x, y)
    assert loss_fn._k_sum == pytest.approx(0.1 * k_step, rel=1e-5)
    assert loss_fn._m_max == pytest.approx(0.2 * m_step, rel=1e-5)
    loss_fn(x, y)
    assert loss_fn._k_sum == pytest.approx(0.9 * 0.1 * k_step + 0.1 * k_step, rel=1e-5)
    assert loss_fn._m_max == pytest.approx(0.8 * 0.2 * m_step + 0.2 * m_step, rel=1e-5)

    # every sample has an ignore pixel: the statistics do not move
    k, m = loss_fn._k_sum, loss_fn._m_max
    y2 = y.clone()
    y2[:, 0, 0, 0] = -1
    loss_fn(x, y2)
    assert (loss_fn._k_sum, loss_fn._m_max) == (k, m)

    sw = FakeWriter()
    loss_fn.log_states(sw, "TrainLosses/instance_loss", 7)
    assert sw.calls == [("TrainLosses/instance_loss_k", k, 7), ("TrainLosses/instance_loss_m", m, 7)]
    assert all(isinstance(v, float) for _, v, _ in sw.calls)


def test_log_states_with_torch_summary_writer(tmp_path):
    tb = pytest.importorskip("torch.utils.tensorboard")
    loss_fn = WFNL(alpha=0.5)
    loss_fn(*make_case(16))
    with tb.SummaryWriter(log_dir=str(tmp_path)) as sw:
        loss_fn.log_states(sw, "TrainLosses/instance_refine_loss", 3)
    assert any(tmp_path.iterdir())
