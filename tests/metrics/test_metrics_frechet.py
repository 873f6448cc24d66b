"""Frechet distance and FeatureStats: known values, scipy reference, streaming, files, bad inputs."""

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vganzoo.metrics import FeatureStats, frechet_distance, trace_sqrt_product


def random_cov(rng, dim, rank=None):
    a = rng.normal(size=(dim, rank or dim + 3))
    return a @ a.T / a.shape[1]


def scipy_frechet(mu1, mu2, c1, c2):
    root = scipy.linalg.sqrtm(c1 @ c2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(root).real)


@pytest.mark.parametrize("dim", [1, 5, 64, 200])
def test_trace_sqrt_matches_scipy_sqrtm(dim):
    rng = np.random.default_rng(dim)
    c1, c2 = random_cov(rng, dim), random_cov(rng, dim)
    expected = np.trace(scipy.linalg.sqrtm(c1 @ c2)).real
    assert trace_sqrt_product(c1, c2) == pytest.approx(expected, rel=1e-9)


def test_trace_sqrt_rank_deficient():
    # rank-deficient covariances (fewer samples than dimensions) are where sqrtm goes complex
    rng = np.random.default_rng(1)
    c1, c2 = random_cov(rng, 40, rank=10), random_cov(rng, 40, rank=12)
    expected = np.trace(scipy.linalg.sqrtm(c1 @ c2)).real
    assert trace_sqrt_product(c1, c2) == pytest.approx(expected, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("dim", [3, 50])
def test_frechet_matches_scipy_formula(dim):
    rng = np.random.default_rng(10 + dim)
    mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
    c1, c2 = random_cov(rng, dim), random_cov(rng, dim)
    assert frechet_distance(mu1, mu2, c1, c2) == pytest.approx(scipy_frechet(mu1, mu2, c1, c2), rel=1e-9)


def test_diagonal_gaussians_closed_form():
    # for diagonal covariances: ||mu1 - mu2||^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2
    a = np.array([1.0, 4.0, 9.0, 0.25])
    b = np.array([4.0, 1.0, 9.0, 2.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert expected == pytest.approx(1 + 4 + (1 + 1 + 0 + 1))
    assert frechet_distance(mu1, mu2, np.diag(a), np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_rotated_gaussians_closed_form():
    # the distance is invariant under a common rotation of both Gaussians
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a, b = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
    expected = ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = frechet_distance(np.zeros(6), np.zeros(6), q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_identical_sets_give_zero():
    rng = np.random.default_rng(4)
    feats = rng.normal(size=(300, 32)) * 5 + 2
    s1, s2 = FeatureStats().update(feats), FeatureStats().update(feats[::-1].copy())
    assert frechet_distance(s1, s2) == pytest.approx(0.0, abs=1e-8)


def test_distance_grows_with_mean_shift():
    rng = np.random.default_rng(5)
    base = rng.normal(size=(500, 8))
    ref = FeatureStats().update(base)
    shifted = [frechet_distance(ref, FeatureStats().update(base + d)) for d in (0.0, 0.5, 1.0)]
    # a pure mean shift of d in all 8 dims adds exactly 8 d^2
    assert shifted[1] == pytest.approx(8 * 0.25, rel=1e-9)
    assert shifted[2] == pytest.approx(8 * 1.0, rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=2, max_value=12), st.integers(min_value=0, max_value=2**31 - 1))
def test_symmetric_and_non_negative(dim, seed):
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
    c1, c2 = random_cov(rng, dim), random_cov(rng, dim)
    d12, d21 = frechet_distance(mu1, mu2, c1, c2), frechet_distance(mu2, mu1, c2, c1)
    assert d12 >= 0
    assert d12 == pytest.approx(d21, rel=1e-7, abs=1e-9)


# ---------------------------------------------------------------- FeatureStats


def test_stats_match_numpy_and_batching_does_not_matter():
    rng = np.random.default_rng(6)
    feats = rng.normal(size=(257, 20)) @ rng.normal(size=(20, 20)) + 3
    one = FeatureStats().update(feats)
    many = FeatureStats()
    for start in range(0, 257, 50):
        many.update(torch.from_numpy(feats[start : start + 50]))  # a float64 tensor
    for stats in (one, many):
        assert stats.n == 257 and stats.dim == 20
        np.testing.assert_allclose(stats.mean, feats.mean(0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(stats.cov, np.cov(feats, rowvar=False), rtol=1e-10, atol=1e-12)


def test_covariance_survives_a_large_offset():
    # sums of raw outer products would lose every digit here; the shifted sums keep them
    rng = np.random.default_rng(7)
    feats = rng.normal(size=(1000, 4)) + 1e7
    stats = FeatureStats()
    for chunk in np.array_split(feats, 7):
        stats.update(chunk)
    np.testing.assert_allclose(stats.cov, np.cov(feats, rowvar=False), rtol=1e-6)


def test_merge_equals_single_pass():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(40, 5)) + 10, rng.normal(size=(70, 5)) * 3 - 2
    merged = FeatureStats().update(a).merge(FeatureStats().update(b))
    single = FeatureStats().update(np.concatenate([a, b]))
    np.testing.assert_allclose(merged.mean, single.mean, rtol=1e-12)
    np.testing.assert_allclose(merged.cov, single.cov, rtol=1e-10)


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(9)
    stats = FeatureStats().update(rng.normal(size=(30, 6)))
    protocol = {"metric": "fvd", "frames": 16, "extractor_sha256": "ab" * 32}
    path = tmp_path / "real.safetensors"
    stats.save(path, protocol)
    loaded = FeatureStats.load(path)
    assert loaded.n == 30 and loaded.dim == 6 and loaded.protocol == protocol
    np.testing.assert_array_equal(loaded.mean, stats.mean)
    np.testing.assert_array_equal(loaded.cov, stats.cov)
    assert [p.name for p in tmp_path.iterdir()] == ["real.safetensors"]  # no temp file left


def test_load_rejects_other_files(tmp_path):
    from safetensors.numpy import save_file

    bad = tmp_path / "weights.safetensors"
    save_file({"w": np.zeros(3)}, str(bad))
    with pytest.raises(ValueError, match="not a vganzoo feature-statistics file"):
        FeatureStats.load(bad)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"hello world, not tensors")
    with pytest.raises(ValueError, match="not a safetensors file"):
        FeatureStats.load(junk)
    with pytest.raises(FileNotFoundError):
        FeatureStats.load(tmp_path / "missing.safetensors")


# ---------------------------------------------------------------- errors


def test_too_few_samples():
    stats = FeatureStats().update(np.ones((1, 4)))
    with pytest.raises(ValueError, match="N=1"):
        _ = stats.cov
    other = FeatureStats().update(np.random.default_rng(0).normal(size=(10, 4)))
    with pytest.raises(ValueError, match=r"N=1.*N >= 2"):
        frechet_distance(stats, other)
    with pytest.raises(ValueError, match="N=0"):
        frechet_distance(FeatureStats(), other)


def test_mismatched_feature_sizes():
    rng = np.random.default_rng(0)
    a, b = FeatureStats().update(rng.normal(size=(10, 4))), FeatureStats().update(rng.normal(size=(10, 5)))
    with pytest.raises(ValueError, match="feature sizes differ: 4 vs 5"):
        frechet_distance(a, b)
    with pytest.raises(ValueError, match="5 dimensions but these statistics hold 4"):
        a.update(rng.normal(size=(3, 5)))
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(np.zeros(3), np.zeros(4), np.eye(3), np.eye(4))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        a.update(np.zeros(4))


def test_nan_features_rejected():
    feats = np.random.default_rng(0).normal(size=(10, 3))
    feats[4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        FeatureStats().update(feats)
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.array([0.0, np.nan]), np.zeros(2), np.eye(2), np.eye(2))


def test_invalid_gaussians_and_complex_features_rejected():
    zero = np.zeros(2)
    with pytest.raises(ValueError, match="first: the covariance is not positive semi-definite"):
        frechet_distance(zero, zero, -np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="first: the covariance is not symmetric"):
        frechet_distance(zero, zero, np.array([[1.0, 5.0], [0.0, 1.0]]), np.eye(2))
    # a rank-deficient covariance (PSD with rounding) is fine
    v = np.random.default_rng(0).normal(size=(3, 1))
    assert frechet_distance(np.zeros(3), np.zeros(3), v @ v.T, v @ v.T) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(TypeError, match="real numbers"):
        FeatureStats().update(np.ones((3, 2)) * 1j)
    with pytest.raises(TypeError, match="real numbers"):
        FeatureStats().update(torch.ones(3, 2, dtype=torch.complex64))


def test_merge_takes_feature_stats_only():
    with pytest.raises(TypeError, match="other: expected FeatureStats, got ndarray"):
        FeatureStats().merge(np.ones((3, 2)))


def _with_header(path, change):
    """Rewrite a safetensors file's JSON header through ``change`` (same data bytes)."""
    import json
    import struct

    data = path.read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    header = change(json.loads(data[8 : 8 + size]))
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + size :])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda h: {**h, "sum": {**h["sum"], "data_offsets": h["shift"]["data_offsets"]}}, "is damaged"),
        (lambda h: {**h, "__metadata__": {**h["__metadata__"], "n": str(10**400)}}, "'n' must be a positive"),
        (lambda h: {**h, "__metadata__": {**h["__metadata__"], "dim": "abc"}}, "'dim' must be a positive"),
        (
            lambda h: {**h, "__metadata__": {k: v for k, v in h["__metadata__"].items() if k != "n"}},
            "'n' must",
        ),
        (lambda h: {**h, "__metadata__": {**h["__metadata__"], "protocol": "[1]"}}, "not a JSON object"),
    ],
)
def test_damaged_statistics_files_are_one_line_errors_naming_the_file(tmp_path, change, match):
    from vganzoo.metrics.frechet import FeatureStats

    path = tmp_path / "stats.safetensors"
    FeatureStats(3).update(np.random.default_rng(0).normal(size=(4, 3))).save(path)
    _with_header(path, change)
    with pytest.raises(ValueError, match=match) as info:
        FeatureStats.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
