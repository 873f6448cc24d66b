"""Named, pinned FVD and IS protocols: the definitions the published numbers were computed with.

There is no single "FVD" or "video IS": papers use different detector files, preprocessing, clip
sampling, sample counts and arithmetic, and each choice moves the number (often by more than the
differences between the models being compared). Each :class:`Protocol` below fixes all of them,
following the original code line by line; its docstring pins the arithmetic and names the file it
comes from. ``vganzoo eval --protocol NAME`` (:func:`vganzoo.metrics.evaluate_protocol`) runs one;
``docs/metrics.md`` lists which papers used which, with their published numbers.

Common to all: generated clips are ``model.sample(batch_size, seed=run_seed + i)`` for batch ``i``
(``run_seed = seed + run * RUN_SEED_STRIDE``), clips start at the generator's first frame; the
detector is the user's file (sha256 recorded); features leave the detector as float32.

=============================  ======================================================================
stylegan-v-fvd16               StyleGAN-V ``fvd2048_16f``
stylegan-v-fvd128              StyleGAN-V ``fvd2048_128f``
stylegan-v-fvd128-subsample8f  StyleGAN-V ``fvd2048_128f_subsample8f``
videogpt-fvd                   VideoGPT ``scripts/compute_fvd.py``
tats-fvd                       TATS ``tats/fvd/fvd.py`` (the "resize to 224, [-1, 1]" variant)
stylegan-v-is                  StyleGAN-V ``isv2048_ucf``
tgan2-is                       tgan2 ``scripts/compute_inception_score.py``
=============================  ======================================================================
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

__all__ = [
    "DEFINITIONS",
    "DETECTORS",
    "PROTOCOLS",
    "RUN_SEED_STRIDE",
    "DetectorSpec",
    "Protocol",
    "get_protocol",
    "protocol_names",
]

# run r draws generated batch i with seed + r * RUN_SEED_STRIDE + i: runs never share a seed while a run
# has fewer than a million batches
RUN_SEED_STRIDE = 1_000_000
STYLEGAN_V = "universome/stylegan-v @ 1f630af"
VIDEOGPT = "wilson1yan/VideoGPT @ 3eee7ec"
TATS = "songweige/TATS @ 26c33f5"
TGAN2 = "pfnet-research/tgan2 @ d83018c"


@dataclasses.dataclass(frozen=True)
class DetectorSpec:
    """What a protocol's detector file must be.

    Attributes:
        kind: ``torchscript`` (loaded with ``torch.jit.load``: the file holds TorchScript code and
            tensors, and no Python code from it runs) or ``safetensors`` (our converter's output).
        network: what the file holds.
        call: how it is called (the input contract).
        output_dim: the size of the (N, D) output the protocol checks.
        output: ``features``, ``logits`` or ``probabilities`` (rows summing to 1, checked).
        obtain: where the user gets it and how it is converted.
    """

    kind: str
    network: str
    call: str
    output_dim: int
    output: str
    obtain: str


DETECTORS: dict[str, DetectorSpec] = {
    "stylegan-v-i3d": DetectorSpec(
        kind="torchscript",
        network="StyleGAN-V's TorchScript port of the tf.hub I3D (Kinetics-400), i3d_torchscript.pt",
        call="detector(x, rescale=True, resize=True, return_features=True); x: (N, 3, T, H, W) uint8",
        output_dim=400,
        output="features",
        obtain="i3d_torchscript.pt as linked from StyleGAN-V's src/metrics/frechet_video_distance.py; pass "
        "the file as is",
    ),
    "stylegan-v-c3d": DetectorSpec(
        kind="torchscript",
        network="StyleGAN-V's TorchScript port of tgan2's UCF-101 C3D, c3d_ucf101.pt",
        call="detector(x); x: (N, 3, 16, H, W) uint8",
        output_dim=101,
        output="probabilities",
        obtain="c3d_ucf101.pt as linked from StyleGAN-V's src/metrics/video_inception_score.py; pass the "
        "file as is",
    ),
    "pytorch-i3d": DetectorSpec(
        kind="safetensors",
        network="pytorch-i3d InceptionI3d (VideoGPT's copy: batch-norm eps 1e-5) with i3d_pretrained_400.pt",
        call="network(x); x: (N, 3, 16, 224, 224) float",
        output_dim=400,
        output="logits",
        obtain="`vganzoo convert i3d i3d_pretrained_400.pt i3d_pretrained_400.safetensors`",
    ),
    "tgan2-c3d": DetectorSpec(
        kind="safetensors",
        network="tgan2's Chainer C3DVersion1UCF101 (conv3d_deepnetA_ucf.npz + mean2.npz)",
        call="network(128 x + 128 - mean); x: (N, 3, 16, 112, 112) float, resized with align_corners=True",
        output_dim=101,
        output="logits",
        obtain="`vganzoo convert tgan2-c3d conv3d_deepnetA_ucf.npz c3d_tgan2.safetensors --mean mean2.npz`",
    ),
}


@dataclasses.dataclass(frozen=True)
class Protocol:
    """One pinned evaluation protocol (see the module docstring for the list).

    Attributes:
        name: the protocol's name (``--protocol``).
        metric: ``fvd`` or ``is``.
        detector: a key of :data:`DETECTORS`.
        frames: frames per clip given to the detector.
        subsample: the step between those frames (generated: frames 0, s, 2s, ...; real: offset + k s).
        n_generated, n_real: clips per run (``n_real`` 0: no real data).
        num_runs: independent draws; the score is their mean, with the population std beside it.
        splits: Inception Score splits within a run.
        pipeline: how clips become detector input (``stylegan-v``, ``videogpt``, ``tats``, ``tgan2``).
        real_clips: real-clip sampling (``stylegan-v``, ``windows``, ``none``).
        real_split: the data folder's split the original code reads (None: the folder as given).
        real_per_run: a new real draw for every run (else one draw, as StyleGAN-V's cached statistics).
        score: the arithmetic of the number (``stylegan-v-frechet``, ``tf-gan-frechet``,
            ``stylegan-v-is``, ``tgan2-is``).
        source: the original files this definition follows.
        used_by: papers / code bases that report numbers under it.
    """

    name: str
    metric: str
    detector: str
    frames: int
    subsample: int
    n_generated: int
    n_real: int
    num_runs: int
    splits: int
    pipeline: str
    real_clips: str
    real_split: str | None
    real_per_run: bool
    score: str
    source: tuple[str, ...]
    used_by: tuple[str, ...]

    @property
    def uses_real_data(self) -> bool:
        return self.n_real > 0

    @property
    def detector_spec(self) -> DetectorSpec:
        return DETECTORS[self.detector]

    @property
    def span(self) -> int:
        """Frames a clip covers in its video: ``frames * subsample`` as StyleGAN-V counts it."""
        return self.frames * self.subsample

    def describe(self) -> dict[str, Any]:
        """The definition as JSON-able data (stored with every score and in real-data caches)."""
        out = dataclasses.asdict(self)
        out["detector_spec"] = dataclasses.asdict(self.detector_spec)
        out["source"], out["used_by"] = list(self.source), list(self.used_by)
        return out

    def digest(self) -> str:
        """sha256 of :meth:`describe`: a changed definition never reuses an old cache."""
        return hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode()).hexdigest()


def _stylegan_v_fvd(name: str, frames: int, subsample: int, metric_name: str) -> Protocol:
    return Protocol(
        name=name,
        metric="fvd",
        detector="stylegan-v-i3d",
        frames=frames,
        subsample=subsample,
        n_generated=2048,
        n_real=2048,
        num_runs=1,
        splits=0,
        pipeline="stylegan-v",
        real_clips="stylegan-v",
        real_split=None,
        real_per_run=False,
        score="stylegan-v-frechet",
        source=(
            f"{STYLEGAN_V} src/metrics/metric_main.py ({metric_name})",
            f"{STYLEGAN_V} src/metrics/frechet_video_distance.py (compute_fvd)",
            f"{STYLEGAN_V} src/metrics/metric_utils.py (FeatureStats, compute_feature_stats_for_dataset, "
            "compute_feature_stats_for_generator)",
            f"{STYLEGAN_V} src/training/dataset.py (VideoFramesFolderDataset)",
        ),
        used_by=("StyleGAN-V (Skorokhodov et al., CVPR 2022)",),
    )


STYLEGAN_V_FVD16 = _stylegan_v_fvd("stylegan-v-fvd16", 16, 1, "fvd2048_16f")

STYLEGAN_V_FVD128 = _stylegan_v_fvd("stylegan-v-fvd128", 128, 1, "fvd2048_128f")
STYLEGAN_V_FVD128_SUBSAMPLE8F = _stylegan_v_fvd(
    "stylegan-v-fvd128-subsample8f", 16, 8, "fvd2048_128f_subsample8f"
)

VIDEOGPT_FVD = Protocol(
    name="videogpt-fvd",
    metric="fvd",
    detector="pytorch-i3d",
    frames=16,
    subsample=1,
    n_generated=256,
    n_real=256,
    num_runs=4,
    splits=0,
    pipeline="videogpt",
    real_clips="windows",
    real_split="test",
    real_per_run=True,
    score="tf-gan-frechet",
    source=(
        f"{VIDEOGPT} scripts/compute_fvd.py (eval_fvd, n_trials=4, batch of 256)",
        f"{VIDEOGPT} videogpt/fvd/fvd.py (preprocess, frechet_distance)",
        f"{VIDEOGPT} videogpt/data.py (VideoDataset, preprocess)",
        "wilson1yan/VideoGPT videogpt/fvd/pytorch_i3d.py (BatchNorm3d eps=1e-5)",
    ),
    used_by=("VideoGPT (Yan et al., 2021)",),
)
TATS_FVD = dataclasses.replace(
    VIDEOGPT_FVD,
    name="tats-fvd",
    pipeline="tats",
    n_generated=2048,
    n_real=2048,
    num_runs=1,
    source=(
        f"{TATS} tats/fvd/fvd.py (preprocess, frechet_distance, FVD_SAMPLE_SIZE=2048)",
        f"{TATS} tats/data.py (VideoDataset: real clips, as VideoGPT's)",
        f"{TATS} tats/fvd/convert_tf_pretrained.py (i3d_pretrained_400.pt from tf.hub, built with "
        "VideoGPT's pytorch_i3d)",
    ),
    used_by=("TATS (Ge et al., ECCV 2022)",),
)

STYLEGAN_V_IS = Protocol(
    name="stylegan-v-is",
    metric="is",
    detector="stylegan-v-c3d",
    frames=16,
    subsample=1,
    n_generated=2048,
    n_real=0,
    num_runs=1,
    splits=10,
    pipeline="stylegan-v",
    real_clips="none",
    real_split=None,
    real_per_run=False,
    score="stylegan-v-is",
    source=(
        f"{STYLEGAN_V} src/metrics/metric_main.py (isv2048_ucf)",
        f"{STYLEGAN_V} src/metrics/video_inception_score.py (compute_isv)",
        f"{STYLEGAN_V} src/metrics/metric_utils.py (compute_feature_stats_for_generator, FeatureStats)",
    ),
    used_by=("StyleGAN-V (Skorokhodov et al., CVPR 2022)",),
)

TGAN2_IS = Protocol(
    name="tgan2-is",
    metric="is",
    detector="tgan2-c3d",
    frames=16,
    subsample=1,
    n_generated=2048,
    n_real=0,
    num_runs=10,
    splits=1,
    pipeline="tgan2",
    real_clips="none",
    real_split=None,
    real_per_run=False,
    score="tgan2-is",
    source=(
        f"{TGAN2} scripts/compute_inception_score.py (--n-samples 2048, --n-loops 10, splits=1)",
        f"{TGAN2} tgan2/evaluations/inception_score.py (make_samples, inception_score, eps=1e-20)",
        f"{TGAN2} tgan2/models/c3d/c3d_ucf101.py (C3DVersion1UCF101)",
    ),
    used_by=("TGANv2 (Saito et al., IJCV 2020)",),
)

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        STYLEGAN_V_FVD16,
        STYLEGAN_V_FVD128,
        STYLEGAN_V_FVD128_SUBSAMPLE8F,
        VIDEOGPT_FVD,
        TATS_FVD,
        STYLEGAN_V_IS,
        TGAN2_IS,
    )
}

# The arithmetic of each protocol, pinned (read from the originals named in ``Protocol.source``); shown by
# ``vganzoo eval --protocol NAME --describe`` and stored with every score.
DEFINITIONS: dict[str, str] = {
    "stylegan-v-fvd16": """StyleGAN-V's ``fvd2048_16f``.

* Detector: ``i3d_torchscript.pt`` (TorchScript), called ``detector(x, rescale=True, resize=True,
  return_features=True)`` on uint8 ``(N, 3, 16, H, W)``; 400-d features. Rescaling to [-1, 1] and
  resizing to 224 happen inside the file (its author: ``x / 255 * 2 - 1``); vganzoo passes uint8.
* Generated clips: frames ``t = 0, 1, ..., 15`` (``subsample_factor`` 1) of ``model.sample``; each
  value quantised as ``(x * 127.5 + 128).clamp(0, 255).to(torch.uint8)`` (a float-to-uint8 cast
  truncates, so 0.999 -> 0 and 255.5 -> 255) before the detector; gray repeated to 3 channels.
* Real clips: the data folder's videos in sorted order (Python string sort of the names; frames of a
  frame folder by string sort too, not natural order), those with fewer than ``16 * 1`` frames dropped,
  the first ``min(2048, len)`` usable ones (vganzoo: exactly 2048, or an error naming the count), one
  clip per video of 16 consecutive frames from ``offset = randint(0, L - 16 * s + s - 1)``
  (inclusive; vganzoo draws it with ``numpy.random.default_rng([seed, 1]).integers`` video by video),
  frames as stored (uint8, no resizing by vganzoo), gray repeated to 3 channels.
* Statistics: float32 features accumulated in float64: ``mean = sum x / N``,
  ``cov = sum x x^T / N - mean mean^T`` (divisor N, not N - 1).
* Distance: ``m = |mu_g - mu_r|^2``; ``s = scipy.linalg.sqrtm(sigma_g @ sigma_r)``;
  ``fvd = real(m + trace(sigma_g + sigma_r - 2 s))`` (the real part taken once, at the end).
* Counts: 2048 generated, 2048 real, 1 run. With ``num_runs`` K, StyleGAN-V reuses its cached real
  statistics for every run; so does vganzoo (one real draw, seed ``seed``).
""",
    "stylegan-v-fvd128": "As stylegan-v-fvd16 with 128-frame clips (fvd2048_128f): videos shorter than 128 "
    "frames are dropped; the model must generate at least 128 frames.",
    "stylegan-v-fvd128-subsample8f": "As stylegan-v-fvd16 with every 8th frame (fvd2048_128f_subsample8f: "
    "num_frames=16, subsample_factor=8): generated frames t = 0, 8, ..., 120; real clips offset + 8k with "
    "offset = randint(0, L - 128 + 7), videos shorter than 16 * 8 = 128 frames dropped.",
    "videogpt-fvd": """VideoGPT's compute_fvd.py.
* Detector: pytorch-i3d (VideoGPT's copy: every BatchNorm3d has eps=1e-5, momentum irrelevant) with
  i3d_pretrained_400.pt (TF-hub weights converted); 400 logits averaged over time.
* Clip to uint8: generated ``((x + 1) / 2 * 255).to(uint8)`` (VideoGPT's samples are in [0, 1] and
  ``(fake * 255).astype('uint8')`` truncates); real clips come out of VideoDataset in [-0.5, 0.5] at the
  model's resolution (short side to `resolution` with bilinear, align_corners=False, no antialias,
  the other side ``ceil``; centre crop) and go back with ``((v + 0.5) * 255).astype('uint8')``.
* Detector input (videogpt/data.py preprocess via fvd.py): uint8 / 255; the short side resized to 224
  (bilinear, align_corners=False, no antialias; other side ceil(w * 224 / h)); centre crop 224x224
  (start ``(w - 224) // 2``); minus 0.5: the I3D sees [-0.5, 0.5] (not [-1, 1]) in this version.
* Real clips: every window of 16 consecutive frames of every video of the ``test`` split
  (torchvision VideoClips, step 1), 256 drawn at random without replacement per trial (a shuffled
  DataLoader's first batch); vganzoo draws them with ``numpy.random.default_rng([seed, 1]).choice``.
* Distance (TF-GAN's, in torch float32 in the original; float64 numpy in vganzoo): mean; covariance
  with divisor N - 1; ``sqrt(A) = U diag(s_i if s_i < 1e-10 else sqrt(s_i)) V^T`` from the SVD;
  ``fd = trace(S_g + S_r) - 2 trace(sqrt(sqrt(S_g) S_r sqrt(S_g))) + |mu_g - mu_r|^2``.
* Counts: 256 generated and 256 real per trial, 4 trials (new real clips each), mean and std.""",
    "tats-fvd": """TATS's tats/fvd/fvd.py: as videogpt-fvd except the detector input is
``2 * resize(uint8 clip as float, 224x224) / 255 - 1`` (resized first, bilinear, align_corners=False,
no antialias, aspect ratio not kept, no crop): the I3D sees [-1, 1]. 2048 clips per side
(FVD_SAMPLE_SIZE). TATS's evaluation script (how it draws and quantises clips) was not in the code
read for this definition: vganzoo draws real clips as videogpt-fvd does (TATS's VideoDataset is
VideoGPT's) and quantises generated clips the same way.""",
    "stylegan-v-is": """StyleGAN-V's isv2048_ucf.
* Detector: c3d_ucf101.pt (TorchScript), called ``detector(x)`` on uint8 (N, 3, 16, H, W) from the
  same quantisation as stylegan-v-fvd16; its output is taken as probabilities (checked: rows sum to 1).
* 2048 generated clips (frames 0..15), probabilities kept as float32 (FeatureStats.append).
* Score: ``numpy.random.RandomState(42).shuffle(probs)``; 10 splits ``probs[i N // 10 : (i + 1) N // 10]``;
  per split ``kl = part * (log(part) - log(mean(part, axis=0)))``, ``exp(mean(sum(kl, axis=1)))``
  (float32 numpy, no epsilon); mean and population std over the splits.""",
    "tgan2-is": """tgan2's compute_inception_score.py.
* Detector: C3DVersion1UCF101 (conv3d_deepnetA_ucf.npz, mean2.npz), fc8 logits, F.softmax (float32),
  stored as float64.
* Generated clips: 16 frames, float32 clipped to [-1, 1] (no quantisation); the network's ``pre``:
  x * 128 (RGB to BGR: reversed in conv1a by the converter), every frame resized to 112x112 (Chainer
  resize_images: bilinear, align_corners=True, aspect ratio not kept), plus 128 - mean2[:, :, 8:120,
  8:120]; max-pools with cover_all (ceil mode).
* Score per loop: 1 split; ``part = probs + 1e-20``; ``kl = part * (log(part) - log(mean(part, 0)))``;
  ``exp(mean(sum(kl, 1)))`` in float64.
* Counts: 2048 samples per loop, 10 loops (new samples each); mean and population std over loops.""",
}


def protocol_names() -> list[str]:
    return list(PROTOCOLS)


def get_protocol(name: str | Protocol) -> Protocol:
    """The :class:`Protocol` called ``name`` (a Protocol is returned as is)."""
    if isinstance(name, Protocol):
        return name
    if not isinstance(name, str) or name not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {name!r}")
    return PROTOCOLS[name]
