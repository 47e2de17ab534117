"""Property tests of the two-stage model kind (map_core.model.two_stage, map_core.model.turner).

- stage 2 sees every oxygen within reach, before or after a molecule, and no orientation after it;
  the checker itself is shown to fail when the causal mask is broken either way;
- stage 1 sees occupancy only, so it is a chain over oxygens;
- the reference and the fast sampler give identical boxes (boundaries, fixed voxels, temperatures),
  and the log-probability of a box is what the samplers summed and what training minimises.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from map_core.model.kinds import kind_of
from map_core.model.pixelcnn import ModelConfig
from map_core.model.turner import Lattice, neighbour_offsets, orientation_loss
from map_core.sampling import log_prob, sample_fast, sample_reference
from map_core.sampling.canvas import make_canvas
from validation.cli.main import main
from validation.gate.reference import SHIPPED_TRAINING_SET

REACH_NM, VOXEL_NM = 0.2, 0.05  # 4 voxels: small kernels, the same code


def tiny_two_stage(seed: int = 0, empty_logit: float = 8.0, layers: int = 1):
    """A random two-stage model: stage 2's weights drawn, stage 1 biased towards empty (a few % occupied)."""
    config = ModelConfig(layers=layers, filters=8, encoding="water", n_classes=241, voxel_nm=VOXEL_NM, kind="two-stage",
                         dropout=0.0, reach_nm=REACH_NM)
    torch.manual_seed(seed)
    net = kind_of(config).build(config).eval()
    with torch.no_grad():
        for p in net.stage2.parameters():
            p.normal_(0.0, 0.7)
        net.stage1.head_out.bias[0] += empty_logit
    return net


def random_lattice(seed: int, shape=(9, 9, 9), fraction: float = 0.15):
    rng = np.random.default_rng(seed)
    occupied = torch.from_numpy(rng.random(shape) < fraction)[None]
    classes = torch.from_numpy(rng.integers(1, 241, size=shape))[None] * occupied
    return occupied, classes


def stage2_dependencies(turner, occupied, classes, site) -> tuple:
    """(voxels whose oxygen changes the site's logits, voxels whose orientation does), each a set of
    (dz, dy, dx) offsets from the site, measured by changing one voxel at a time."""
    def logits(occ, cls):
        return turner.logits_at(Lattice(occ, cls), torch.tensor([[0, *site]]))[0]

    base = logits(occupied, classes)
    oxygen, turn = set(), set()
    _, nz, ny, nx = occupied.shape
    for z, y, x in np.ndindex(nz, ny, nx):
        if (z, y, x) == tuple(site):
            continue
        offset = (z - site[0], y - site[1], x - site[2])
        occ, cls = occupied.clone(), classes.clone()
        occ[0, z, y, x] = not occ[0, z, y, x]
        cls[0, z, y, x] = 7 if occ[0, z, y, x] else 0
        if not torch.allclose(logits(occ, cls), base, atol=1e-12, rtol=0):
            oxygen.add(offset)
        if occupied[0, z, y, x]:
            cls = classes.clone()
            cls[0, z, y, x] = (classes[0, z, y, x] + 100) % 240 + 1  # another orbit: a turn about the axis to the site is invisible
            if not torch.allclose(logits(occupied, cls), base, atol=1e-12, rtol=0):
                turn.add(offset)
    return oxygen, turn


def check_stage2_mask(turner, occupied, classes, site) -> None:
    """Every voxel within reach matters through its oxygen; among occupied ones, exactly those before the
    site in raster order matter through their orientation."""
    oxygen, turn = stage2_dependencies(turner, occupied, classes, site)
    _, nz, ny, nx = occupied.shape
    within = {tuple(o) for o in neighbour_offsets(REACH_NM / VOXEL_NM).tolist()
              if all(0 <= s + d < n for s, d, n in zip(site, o, (nz, ny, nx)))}
    assert oxygen == within
    occupied_within = {o for o in within if occupied[0, site[0] + o[0], site[1] + o[1], site[2] + o[2]]}
    earlier = {o for o in occupied_within if o < (0, 0, 0)}  # raster order is lexicographic in (dz, dy, dx)
    assert earlier, "the test lattice must give the site earlier neighbours"
    assert turn == earlier


@pytest.fixture(scope="module")
def net():
    return tiny_two_stage(seed=1)


def test_stage2_sees_every_oxygen_and_only_earlier_turns(net):
    occupied, classes = random_lattice(3)
    check_stage2_mask(net.stage2.double(), occupied, classes, (4, 4, 4))


@pytest.mark.parametrize("broken", ["sees later turns", "sees no turns"])
def test_the_mask_check_fails_when_the_mask_is_broken(net, broken, monkeypatch):
    real = Lattice.raster_key
    if broken == "sees later turns":  # every neighbour counts as earlier
        monkeypatch.setattr(Lattice, "raster_key", _all_earlier(real))
    else:  # no neighbour counts as earlier
        monkeypatch.setattr(Lattice, "raster_key", lambda self, sites: torch.zeros(len(sites), dtype=torch.int64))
    occupied, classes = random_lattice(3)
    with pytest.raises(AssertionError):
        check_stage2_mask(net.stage2.double(), occupied, classes, (4, 4, 4))


def _all_earlier(real):
    calls = {"n": 0}

    def key(self, sites):  # neighbours are keyed first, sites second: make every neighbour's key smaller
        calls["n"] += 1
        k = real(self, sites)
        return k - 10**9 if calls["n"] % 2 else k
    return key


def test_stage1_sees_occupancy_only(net):
    occupied, classes = random_lattice(5, shape=(6, 6, 6))
    values = classes.long()
    turned = torch.where(values > 0, values % 240 + 1, values)
    with torch.no_grad():
        assert torch.equal(net.stage1.logits(values), net.stage1.logits(turned))
        assert not torch.equal(net.stage1.logits(values), net.stage1.logits(torch.zeros_like(values)))


SAMPLING_CASES = [
    dict(boundary="empty", temperature=1.0),
    dict(boundary="outside", temperature=0.7),
    dict(boundary="empty", temperature=1.0, fixed=True),
    dict(boundary="array", temperature=1.0),
    dict(boundary="empty", temperature=0.0),
]


@pytest.mark.parametrize("case", SAMPLING_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_reference_and_fast_samplers_give_identical_boxes(case):
    argmax = case["temperature"] == 0  # stage 1's argmax: every voxel occupied, a dense lattice for stage 2
    net = tiny_two_stage(seed=2, empty_logit=-30.0 if argmax else 6.0)
    shape, n_boxes = ((4, 5, 6) if argmax else (7, 8, 9)), 2
    kwargs = dict(n_boxes=n_boxes, temperature=case["temperature"], seed=11, boundary=case["boundary"])
    rf = kind_of(net.config).receptive_field(net.config)
    if case["boundary"] == "array":
        rng = np.random.default_rng(0)
        halo = (rf.planes_back, max(rf.rows_back, rf.rows_ahead), max(rf.cols, rf.cols_back))
        arr = (rng.random([n_boxes] + [s + 2 * h for s, h in zip(shape, halo)]) < 0.05) * rng.integers(1, 241, size=1)
        kwargs["boundary"] = arr
    if case.get("fixed"):
        fixed = np.full(shape, -1)
        fixed[3, :, :] = 0
        fixed[3, 4, 4] = 17
        kwargs["fixed"] = fixed
    ref, logp_ref = sample_reference(net, shape, **kwargs)
    fast, logp_fast = sample_fast(net, shape, dtype=torch.float64, **kwargs)
    assert torch.equal(ref, fast)
    assert (ref > 0).any()
    torch.testing.assert_close(logp_ref, logp_fast, rtol=0, atol=1e-9)
    if case.get("fixed"):
        assert (ref[:, 3] == torch.from_numpy(fixed[3]).to(ref.dtype).clamp(min=0)).all()
    if case["temperature"] > 0:
        boundary = kwargs["boundary"]
        expected = log_prob(net, ref, temperature=case["temperature"], boundary=boundary, fixed=kwargs.get("fixed"))
        torch.testing.assert_close(expected, logp_ref, rtol=0, atol=1e-9)


def test_the_fast_sampler_in_float32_gives_the_same_boxes_as_float64():
    net = tiny_two_stage(seed=4, empty_logit=6.0)
    a, _ = sample_fast(net, (8, 8, 8), n_boxes=2, seed=5, boundary="empty", dtype=torch.float64)
    b, _ = sample_fast(net, (8, 8, 8), n_boxes=2, seed=5, boundary="empty", dtype=torch.float32)
    assert torch.equal(a, b)


@given(seed=st.integers(0, 10_000))
@settings(max_examples=6, deadline=None)
def test_training_loss_is_the_log_probability_per_voxel(seed):
    net = tiny_two_stage(seed=seed % 7)
    occupied, classes = random_lattice(seed, shape=(6, 7, 8), fraction=0.05)
    crops = classes.long()
    kind = kind_of(net.config)
    with torch.no_grad():
        loss = kind.loss(net.double(), crops)
    total = log_prob(net, crops, boundary="outside")
    assert float(loss) == pytest.approx(-float(total) / crops.numel(), rel=1e-9)


def test_class_log_probs_are_normalised_and_agree_with_log_prob(net):
    occupied, classes = random_lattice(8, shape=(6, 6, 6), fraction=0.05)
    kind = kind_of(net.config)
    canvas = make_canvas((6, 6, 6), 1, kind.receptive_field(net.config), 241, "outside")
    canvas.box_view(canvas.values)[...] = classes
    every = kind.class_log_probs(net, canvas, 1.0, torch.float64)
    torch.testing.assert_close(torch.logsumexp(every, dim=1), torch.zeros(1, 6, 6, 6, dtype=torch.float64), rtol=0, atol=1e-10)
    chosen = every.gather(1, classes.long()[:, None])[:, 0]
    torch.testing.assert_close(chosen, kind.log_prob(net, canvas, 1.0, torch.float64), rtol=0, atol=1e-10)


def test_warm_start_takes_stage1_from_a_one_stage_model():
    one = ModelConfig(layers=2, filters=4, encoding="water", n_classes=241, voxel_nm=VOXEL_NM, dropout=0.0)
    torch.manual_seed(0)
    source = kind_of(one).build(one)
    two = dataclasses.replace(one, kind="two-stage", reach_nm=REACH_NM)
    net = kind_of(two).build(two)
    copied = kind_of(two).warm_start(net, source)
    assert len(copied) == len(source.state_dict())
    assert torch.equal(net.stage1.head_out.weight, source.head_out.weight)
    assert torch.equal(net.stage1.layers[0].depth.conv.weight, source.layers[0].depth.conv.weight[:, :2])


def test_an_encoding_without_orientations_is_refused():
    config = ModelConfig(layers=1, filters=4, encoding="atoms", n_classes=3, kind="two-stage")
    with pytest.raises(Exception, match="turns molecules"):
        kind_of(config).build(config)


def test_training_lowers_the_orientation_cross_entropy():
    net = tiny_two_stage(seed=0, empty_logit=0.0)
    with torch.no_grad():
        for p in net.stage2.parameters():
            p.zero_()
    occupied, classes = random_lattice(1, shape=(8, 8, 8), fraction=0.05)
    # a rule the geometry can learn: every molecule turned like its nearest earlier neighbour's class 1
    classes = torch.where(occupied, torch.ones_like(classes), classes)
    opt = torch.optim.Adam(net.stage2.parameters(), 0.05)
    start = float(orientation_loss(net.stage2, occupied, classes).detach())
    for _ in range(30):
        loss = orientation_loss(net.stage2, occupied, classes)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.8 * start


@pytest.mark.slow  # a training run, three generate runs and a 2-worker Dask cluster
def test_two_stage_trains_resumes_and_generates_alike_on_one_process_and_on_dask(tmp_path):
    """The command-line path of the kind: train (stage 1 from a one-stage checkpoint), resume, then
    generate with the fast sampler, the reference sampler and on a local Dask cluster: one file."""
    data = str(SHIPPED_TRAINING_SET)
    one = tmp_path / "one.pt"
    common = ["--data", data, "--encoding", "water", "--voxel", "0.05", "--layers", "1", "--filters", "4", "--crop", "12",
              "--batch", "1", "--test-crops", "1", "--no-progress", "--reach", "0.25"]
    assert main(["train", *common, "--out", str(one), "--steps", "1"]) == 0
    two = tmp_path / "two.pt"
    assert main(["train", *common, "--out", str(two), "--steps", "2", "--kind", "two-stage", "--init-from", str(one)]) == 0
    assert main(["train", *common, "--out", str(two), "--steps", "3", "--kind", "two-stage", "--resume"]) == 0
    payload = torch.load(two, weights_only=True)
    assert payload["config"]["kind"] == "two-stage" and payload["training_state"]["step"] == 3
    assert payload["provenance"]["segments"][0]["init_from"]["tensors"] > 0
    gen = ["generate", "--model", str(two), "--shape", "6", "7", "8", "--n-boxes", "3", "--batch", "2", "--seed", "5",
           "--no-progress"]
    assert main([*gen, "--out", str(tmp_path / "fast.npz")]) == 0
    assert main([*gen, "--out", str(tmp_path / "reference.npz"), "--sampler", "reference"]) == 0
    assert main([*gen, "--out", str(tmp_path / "dask.npz"), "--scheduler", "local:2"]) == 0
    a = np.load(tmp_path / "fast.npz")
    for other in ("reference.npz", "dask.npz"):
        b = np.load(tmp_path / other)
        assert np.array_equal(a["grids"], b["grids"]), other
    assert (a["grids"] > 0).any()
