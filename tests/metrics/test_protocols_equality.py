"""Each pinned protocol through vganzoo equals a direct implementation written here from the original
code (StyleGAN-V's metric_utils / frechet_video_distance / video_inception_score / dataset, VideoGPT's
fvd.py / data.py / compute_fvd.py, TATS's fvd.py, tgan2's inception_score.py / c3d_ucf101.py), to 1e-6
relative, with detectors of the same interface and random weights exported the way the originals are.

The direct implementations share nothing with vganzoo but the detector network and model.sample: they
list the folder with os.listdir, read frames with PIL, draw offsets with their own generator calls,
quantise, resize and sum with their own expressions, and take square roots with scipy / torch.
"""

from __future__ import annotations

import math
import os

import numpy as np
import PIL.Image
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from protocol_fixtures import (
    TinyC3DScript,
    TinyI3DScript,
    load_script,
    pytorch_i3d_file,
    save_script,
    tgan2_c3d_files,
    tiny_model,
    write_frame_folder,
)

from vganzoo.metrics import evaluate, evaluate_protocol

pytestmark = pytest.mark.usefixtures("one_thread")
REL = 1e-6
SEED = 3
BATCH = 3


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


# ---------------------------------------------------------------- StyleGAN-V, written from its code


def _stylegan_v_listing(root):
    """VideoFramesFolderDataset: sorted video dirs, frames sorted, as objects sorted by path."""
    videos = sorted(os.path.join(root, d) for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    exts = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
    return [(v, sorted(f for f in os.listdir(v) if os.path.splitext(f)[1].lower() in exts)) for v in videos]


class _Stats:
    """metric_utils.FeatureStats(capture_mean_cov=True)."""

    def __init__(self):
        self.n, self.raw_mean, self.raw_cov = 0, 0.0, 0.0

    def append(self, x):
        x = np.asarray(x, dtype=np.float32)
        x64 = x.astype(np.float64)
        self.n += x.shape[0]
        self.raw_mean = self.raw_mean + x64.sum(axis=0)
        self.raw_cov = self.raw_cov + x64.T @ x64

    def mean_cov(self):
        mean = self.raw_mean / self.n
        return mean, self.raw_cov / self.n - np.outer(mean, mean)


def _stylegan_v_real(root, detector, num_frames, factor, n, seed):
    kwargs = dict(rescale=True, resize=True, return_features=True)
    videos = [(v, fs) for v, fs in _stylegan_v_listing(root) if len(fs) >= num_frames * factor]
    draw = np.random.default_rng([seed, 1])
    stats, batch = _Stats(), []
    for v, fs in videos[:n]:
        offset = int(draw.integers(0, len(fs) - num_frames * factor + factor - 1 + 1))  # randint inclusive
        idx = np.arange(0, num_frames * factor, factor) + offset
        frames = []
        for i in idx:
            image = np.array(PIL.Image.open(os.path.join(v, fs[i])))
            frames.append((image[:, :, None] if image.ndim == 2 else image).transpose(2, 0, 1))
        batch.append(np.array(frames))  # [t, c, h, w] uint8
        if len(batch) == BATCH or v == videos[:n][-1][0]:
            images = torch.from_numpy(np.stack(batch)).permute(0, 2, 1, 3, 4).contiguous()
            if images.shape[1] == 1:
                images = images.repeat([1, 3, 1, 1, 1])
            stats.append(detector(images, **kwargs).numpy())
            batch = []
    return stats.mean_cov()


def _stylegan_v_generated(model, detector, num_frames, factor, n, seed):
    kwargs = dict(rescale=True, resize=True, return_features=True)
    stats = _Stats()
    for i, start in enumerate(range(0, n, BATCH)):
        img = model.sample(min(BATCH, n - start), seed=seed + i)
        t = list(range(0, num_frames * factor, factor))
        img = (img[:, :, t] * 127.5 + 128).clamp(0, 255).to(torch.uint8)
        if img.shape[1] == 1:
            img = img.repeat([1, 3, 1, 1, 1])
        stats.append(detector(img, **kwargs).numpy())
    return stats.mean_cov()


def _stylegan_v_fvd(model, root, detector_path, num_frames, factor, n_gen, n_real, seed):
    detector = load_script(detector_path)
    with torch.no_grad():
        mu_real, sigma_real = _stylegan_v_real(root, detector, num_frames, factor, n_real, seed)
        mu_gen, sigma_gen = _stylegan_v_generated(model, detector, num_frames, factor, n_gen, seed)
    m = np.square(mu_gen - mu_real).sum()
    s = scipy.linalg.sqrtm(np.dot(sigma_gen, sigma_real))
    return float(np.real(m + np.trace(sigma_gen + sigma_real - s * 2)))


@pytest.mark.parametrize(
    ("protocol", "frames", "factor", "model_frames", "lengths"),
    [
        ("stylegan-v-fvd16", 16, 1, 16, [20, 17, 9, 30, 16, 18, 24, 21, 16]),
        ("stylegan-v-fvd128", 128, 1, 128, [130, 140, 100, 128, 135]),
        ("stylegan-v-fvd128-subsample8f", 16, 8, 121, [130, 140, 100, 128, 135]),
    ],
)
def test_stylegan_v_fvd_equals_the_original_arithmetic(
    tmp_path, protocol, frames, factor, model_frames, lengths
):
    root = write_frame_folder(tmp_path / "data", lengths, size=8)
    detector = save_script(TinyI3DScript(), tmp_path / "i3d_torchscript.pt")
    model = tiny_model(frames=model_frames, resolution=8)
    n = 7 if lengths[0] < 100 else 4
    ours = evaluate_protocol(
        model,
        root,
        protocol,
        detector=detector,
        n_generated=n,
        n_real=n,
        seed=SEED,
        batch_size=BATCH,
        real_cache="off",
    )
    direct = _stylegan_v_fvd(model, root, detector, frames, factor, n, n, SEED)
    assert ours["scores"]["fvd"] > 1.0
    assert _rel(ours["scores"]["fvd"], direct) < REL


def test_evaluate_with_protocol_is_evaluate_protocol(tmp_path):
    root = write_frame_folder(tmp_path / "data", [18, 17, 20, 16], size=8)
    detector = save_script(TinyI3DScript(), tmp_path / "i3d.pt")
    model = tiny_model(resolution=8)
    common = dict(detector=detector, n_generated=4, n_real=4, real_cache="off")
    a = evaluate(model, root, protocol="stylegan-v-fvd16", seed=1, batch_size=2, **common)
    b = evaluate_protocol(model, root, "stylegan-v-fvd16", seed=1, batch_size=2, **common)
    assert a["scores"] == b["scores"]
    with pytest.raises(ValueError, match="frames: not settable with protocol='stylegan-v-fvd16'"):
        evaluate(model, root, protocol="stylegan-v-fvd16", frames=8, **common)


# ---------------------------------------------------------------- VideoGPT and TATS, written from their code


def _videogpt_preprocess_single(video, resolution):
    """videogpt/data.py preprocess: video THWC uint8 -> CTHW in [-0.5, 0.5]."""
    video = video.permute(0, 3, 1, 2).float() / 255.0
    _t, _c, h, w = video.shape
    scale = resolution / min(h, w)
    if h < w:
        target_size = (resolution, math.ceil(w * scale))
    else:
        target_size = (math.ceil(h * scale), resolution)
    video = F.interpolate(video, size=target_size, mode="bilinear", align_corners=False)
    _t, _c, h, w = video.shape
    w_start = (w - resolution) // 2
    h_start = (h - resolution) // 2
    video = video[:, :, h_start : h_start + resolution, w_start : w_start + resolution]
    video = video.permute(1, 0, 2, 3).contiguous()
    video -= 0.5
    return video


def _tats_preprocess(videos):
    """tats/fvd/fvd.py preprocess: BTHWC uint8 numpy -> BCTHW in [-1, 1]."""
    b, t, _h, _w, c = videos.shape
    all_frames = torch.FloatTensor(videos).flatten(end_dim=1)
    all_frames = all_frames.permute(0, 3, 1, 2).contiguous()
    resized = F.interpolate(all_frames, size=(224, 224), mode="bilinear", align_corners=False)
    resized = resized.view(b, t, c, 224, 224)
    output = resized.transpose(1, 2).contiguous()
    return 2.0 * output / 255.0 - 1


def _logits(i3d, videos_bthwc, variant):
    if variant == "videogpt":
        x = torch.stack([_videogpt_preprocess_single(torch.from_numpy(v), 224) for v in videos_bthwc])
    else:
        x = _tats_preprocess(videos_bthwc)
    return i3d(x)


def _videogpt_frechet(x1, x2):
    """VideoGPT's frechet_distance (TF-GAN's sqrt via the SVD), in torch float64."""

    def sqrt_sym(mat, eps=1e-10):
        u, s, v = torch.svd(mat)
        si = torch.where(s < eps, s, torch.sqrt(s))
        return torch.matmul(torch.matmul(u, torch.diag(si)), v.t())

    def cov(m):
        m = m.t()
        fact = 1.0 / (m.size(1) - 1)
        m = m - torch.mean(m, dim=1, keepdim=True)
        return fact * m.matmul(m.t()).squeeze()

    x1, x2 = x1.double(), x2.double()
    sigma, sigma_w = cov(x1), cov(x2)
    sqrt_sigma = sqrt_sym(sigma)
    trace_sqrt = torch.trace(sqrt_sym(torch.matmul(sqrt_sigma, torch.matmul(sigma_w, sqrt_sigma))))
    fd = torch.trace(sigma + sigma_w) - 2.0 * trace_sqrt + torch.sum((x1.mean(0) - x2.mean(0)) ** 2)
    return float(fd)


def _videogpt_fvd(model, root, net, variant, n, seed, resolution):
    test = os.path.join(root, "test")
    videos = sorted(os.path.join(test, d) for d in os.listdir(test))
    frames = {v: sorted(os.listdir(v)) for v in videos}
    windows = [(v, s) for v in videos for s in range(len(frames[v]) - 16 + 1)]  # VideoClips, step 1
    chosen = np.random.default_rng([seed, 1]).choice(len(windows), size=n, replace=False)
    real = []
    for k in chosen:
        v, s = windows[int(k)]
        clip = np.stack([np.array(PIL.Image.open(os.path.join(v, f))) for f in frames[v][s : s + 16]])
        video = _videogpt_preprocess_single(torch.from_numpy(clip), resolution)  # VideoDataset item
        real.append(((video + 0.5).permute(1, 2, 3, 0).numpy() * 255).astype("uint8"))  # compute_fvd.py
    fake = []
    for i, start in enumerate(range(0, n, BATCH)):
        sample = (model.sample(min(BATCH, n - start), seed=seed + i)[:, :, :16] + 1) / 2  # VideoGPT's [0, 1]
        fake.append((sample.permute(0, 2, 3, 4, 1).numpy() * 255).astype("uint8"))
    fake = np.concatenate(fake)
    with torch.no_grad():
        fake_logits = torch.cat([_logits(net, fake[i : i + BATCH], variant) for i in range(0, n, BATCH)])
        real = np.stack(real)
        real_logits = torch.cat([_logits(net, real[i : i + BATCH], variant) for i in range(0, n, BATCH)])
    return _videogpt_frechet(fake_logits, real_logits)


@pytest.mark.parametrize("protocol", ["videogpt-fvd", "tats-fvd"])
def test_videogpt_and_tats_fvd_equal_the_original_arithmetic(tmp_path, protocol):
    root = tmp_path / "data"
    write_frame_folder(root / "test", [18, 16, 20], size=10)
    write_frame_folder(root / "train", [16], size=10, seed=9)  # not read: VideoGPT evaluates on test
    detector, net = pytorch_i3d_file(tmp_path)
    model = tiny_model(resolution=8)  # real clips go to 8x8 first, as VideoDataset does at the model's size
    ours = evaluate_protocol(
        model,
        root,
        protocol,
        detector=detector,
        n_generated=3,
        n_real=3,
        num_runs=1,
        seed=SEED,
        batch_size=BATCH,
        real_cache="off",
    )
    direct = _videogpt_fvd(model, root, net.eval(), protocol.split("-")[0], 3, SEED, 8)
    assert ours["scores"]["fvd"] > 1.0
    assert _rel(ours["scores"]["fvd"], direct) < REL


# ---------------------------------------------------------------- the Inception Scores


def _stylegan_v_isv(model, detector_path, n, splits, seed):
    detector = load_script(detector_path)
    all_features = []
    with torch.no_grad():
        for i, start in enumerate(range(0, n, BATCH)):
            img = model.sample(min(BATCH, n - start), seed=seed + i)[:, :, :16]
            img = (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)
            all_features.append(np.asarray(detector(img).numpy(), dtype=np.float32))
    gen_probs = np.concatenate(all_features, axis=0)
    scores = []
    np.random.RandomState(42).shuffle(gen_probs)
    for i in range(splits):
        part = gen_probs[i * n // splits : (i + 1) * n // splits]
        kl = part * (np.log(part) - np.log(np.mean(part, axis=0, keepdims=True)))
        kl = np.mean(np.sum(kl, axis=1))
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def test_stylegan_v_is_equals_the_original_arithmetic(tmp_path):
    detector = save_script(TinyC3DScript(), tmp_path / "c3d_ucf101.pt")
    model = tiny_model(resolution=8)
    ours = evaluate_protocol(
        model, None, "stylegan-v-is", detector=detector, n_generated=23, seed=SEED, batch_size=BATCH
    )
    mean, std = _stylegan_v_isv(model, detector, 23, 10, SEED)
    assert ours["scores"]["is_mean"] > 1.05 and ours["scores"]["is_std_over"] == "splits"
    assert _rel(ours["scores"]["is_mean"], mean) < REL and _rel(ours["scores"]["is_std"], std) < REL


def _chainer_resize_images(x, out_h, out_w):
    """Chainer 6 F.resize_images (bilinear, corners aligned) on (B, C, H, W) numpy float32."""
    _b, _c, h, w = x.shape
    v = np.linspace(0, h - 1, num=out_h)
    u = np.linspace(0, w - 1, num=out_w)
    v0 = np.clip(np.floor(v).astype(np.int64), 0, max(h - 2, 0))
    u0 = np.clip(np.floor(u).astype(np.int64), 0, max(w - 2, 0))
    dv, du = (v - v0)[:, None], (u - u0)[None, :]
    top = x[:, :, v0][:, :, :, u0] * (1 - du) + x[:, :, v0][:, :, :, u0 + 1] * du
    bottom = x[:, :, v0 + 1][:, :, :, u0] * (1 - du) + x[:, :, v0 + 1][:, :, :, u0 + 1] * du
    return (top * (1 - dv) + bottom * dv).astype(np.float32)


def _tgan2_is(model, net_bgr, mean2, n, loops, seed):
    """compute_inception_score.py: n_loops of make_samples + inception_score(splits=1), C3D in BGR."""
    bias = 128 - mean2[:, :, 8 : 8 + 112, 8 : 8 + 112]  # self.mean.b
    scores = []
    for loop in range(loops):
        xs = []
        for i, start in enumerate(range(0, n, BATCH)):
            x = model.sample(min(BATCH, n - start), seed=seed + loop * 1_000_000 + i)[:, :, :16].numpy()
            xs.append(np.clip(x, -1, 1).astype(np.float32))
        xs = np.concatenate(xs)
        h = xs[:, [2, 1, 0]] * 128  # `pre`: W[[0, 1, 2], [2, 1, 0]] = 128
        nb, c, t = h.shape[:3]
        h = h.transpose(0, 2, 1, 3, 4).reshape(nb * t, c, *h.shape[3:])
        h = _chainer_resize_images(h, 112, 112).reshape(nb, t, c, 112, 112).transpose(0, 2, 1, 3, 4)
        h = h + bias
        with torch.no_grad():
            ys = torch.softmax(net_bgr(torch.from_numpy(np.ascontiguousarray(h))), dim=1).double().numpy()
        part = ys[0:n, :] + 1e-20
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return float(np.mean(scores)), float(np.std(scores))


def test_tgan2_is_equals_the_original_arithmetic(tmp_path):
    detector, net_bgr, mean2 = tgan2_c3d_files(tmp_path)
    model = tiny_model(resolution=10)
    ours = evaluate_protocol(
        model, None, "tgan2-is", detector=detector, n_generated=5, num_runs=2, seed=SEED, batch_size=BATCH
    )
    mean, std = _tgan2_is(model, net_bgr, mean2, 5, 2, SEED)
    assert ours["scores"]["is_mean"] > 1.05 and ours["scores"]["is_std_over"] == "runs"
    assert _rel(ours["scores"]["is_mean"], mean) < REL
    # the spread of two runs is a small difference of two scores: compared on the scores' scale (our
    # resize is torch's align_corners=True, the direct one numpy's Chainer formula: ~1e-9 apart)
    assert abs(ours["scores"]["is_std"] - std) < REL * mean
    assert [r["seed"] for r in ours["runs"]] == [SEED, SEED + 1_000_000]
