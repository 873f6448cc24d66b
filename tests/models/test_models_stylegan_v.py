"""StyleGAN-V: the authors' parameter counts, clips of any length and frame rate, sparse frames, recipe."""

from __future__ import annotations

import math

import pytest
import torch

import vganzoo
from vganzoo.errors import InvalidConfigError
from vganzoo.models.stylegan_v import (
    DIGITS_CONFIG,
    StyleGANVDiscriminator,
    StyleGANVGenerator,
    allowed_spans,
    random_frame_times,
)

pytestmark = pytest.mark.usefixtures("one_thread")

# A model small enough for many forward passes on one CPU thread.
TINY = {**DIGITS_CONFIG, "width": 0.03125, "z_dim": 32, "w_dim": 32, "motion_z_dim": 16, "motion_v_dim": 16}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return vganzoo.create("stylegan-v", **TINY).eval()


def test_parameter_counts_equal_the_authors_at_256():
    """Measured from their code with their default config (issue 21); counted on the meta device."""
    with torch.device("meta"):
        model = vganzoo.create("stylegan-v", resolution=256)
    g, d = model.generator, model.discriminators["video"]
    assert count(g.mapping) == 525_312
    assert count(g) - count(g.mapping) == 31_580_629
    assert count(g) == 32_105_941
    assert count(d) == 25_333_568
    assert g.num_ws == 14 and len(g.blocks) == 7


def test_default_config_is_the_paper_256_config():
    spec = vganzoo.registry.get_model_spec("stylegan-v")
    config = spec.default_config
    assert config["resolution"] == 256 and config["channel_base"] == 16384 and config["mapping_layers"] == 2
    assert (config["motion_z_distance"], config["motion_kernel_size"], config["time_dim"]) == (16, 11, 256)
    assert (config["max_frames"], config["sparse_frames"], config["max_dist"]) == (1024, 3, 32)
    assert (config["concat_res"], config["frames_div_factor"], config["conv_clamp"]) == (16, 2, 256)
    assert spec.family == "stylegan_v"
    assert "generator/stylegan-v/generator" in vganzoo.list_components()
    assert "discriminator/stylegan-v/discriminator" in vganzoo.list_components()


@pytest.mark.parametrize("fps", [None, 4.0, 16.0])
def test_first_frames_do_not_depend_on_the_clip_length(tiny, fps):
    clips = {frames: tiny.sample(2, seed=7, frames=frames, fps=fps) for frames in (16, 64, 256)}
    for frames, clip in clips.items():
        assert clip.shape == (2, 1, frames, 32, 32)
    torch.testing.assert_close(clips[64][:, :, :16], clips[16], rtol=0, atol=0)
    torch.testing.assert_close(clips[256][:, :, :64], clips[64], rtol=0, atol=0)
    assert not torch.equal(clips[256][:, :, 0], clips[256][:, :, 200])  # it moves


def test_frame_rate_is_relative_to_the_data(tiny):
    """fps = 2x the training data's renders every frame of the 1x clip and one between each pair."""
    base = tiny.sample(2, seed=3, frames=8)  # at the config's fps (8)
    double = tiny.sample(2, seed=3, frames=16, fps=16)
    torch.testing.assert_close(double[:, :, ::2], base, rtol=0, atol=0)
    assert not torch.equal(double[:, :, 1], base[:, :, 0]) and not torch.equal(double[:, :, 1], base[:, :, 1])
    _, latents = tiny.sample(1, seed=3, frames=4, fps=32, return_latents=True)
    assert latents["frame_times"].tolist() == [[0.0, 0.25, 0.5, 0.75]]


def test_long_clips_draw_more_motion_codes_with_the_same_start(tiny):
    g = tiny.generator
    short = g.sample_latents(2, generator=torch.Generator().manual_seed(1), frames=16)
    long = g.sample_latents(2, generator=torch.Generator().manual_seed(1), frames=300)
    assert short["motion_z"].shape[1] == g.motion.codes_needed(15, g.max_frames)
    assert long["motion_z"].shape[1] == math.ceil(299 / 8) + 2 + 8 > short["motion_z"].shape[1]
    torch.testing.assert_close(long["motion_z"][:, : short["motion_z"].shape[1]], short["motion_z"])
    torch.testing.assert_close(long["z"], short["z"])
    with pytest.raises(ValueError, match="motion_z has .* codes per video, frames up to time 299 need"):
        g(short["z"], short["motion_z"], long["frame_times"])


def test_time_embedding_is_continuous_across_motion_code_boundaries(tiny):
    """The aligned sine/cosine features: no jump where the frame's left motion code changes."""
    g = tiny.generator
    latents = g.sample_latents(2, generator=torch.Generator().manual_seed(4), frames=2)
    distance = g.motion.distance
    eps = 1e-3
    times = torch.tensor([[distance - eps, distance + eps]] * 2)
    with torch.no_grad():
        emb = g.motion(latents["motion_z"], times, None).reshape(2, 2, -1)
        far = g.motion(latents["motion_z"], times + distance / 2, None).reshape(2, 2, -1)
    assert (emb[:, 0] - emb[:, 1]).abs().max() < 0.05 * (far[:, 0] - emb[:, 0]).abs().max()


def test_sparse_training_latents_and_discriminator_frames(tiny):
    g, d = tiny.generator, tiny.discriminators["video"]
    g.train()
    try:
        latents = g.sample_latents(6, generator=torch.Generator().manual_seed(2))
    finally:
        g.eval()
    times = latents["frame_times"]
    assert times.shape == (6, 3)
    spans = times[:, -1] - times[:, 0]
    assert set(spans.round().long().tolist()) <= set(allowed_spans(3, 16, 32)) == {2, 4, 8}
    assert (times[:, 1:] > times[:, :-1]).all() and (times.frac() > 0).any()  # fractional starts
    assert ((times[:, 1] - times[:, 0]).frac().abs() < 1e-5).all()  # whole gaps
    assert times.min() >= 0 and times.max() <= g.max_frames - 1
    fake = g(**latents)
    assert fake.shape == (6, 1, 3, 32, 32)
    # given the rendered frames' times, D scores those frames; a whole clip gets its frames picked
    with torch.no_grad():
        scored = d(fake, frame_times=times).logits
        clip = tiny.sample(6, seed=1, frames=16)
        picked = d(clip).logits  # eval: frames 0, 4, 8 (the longest span, evenly)
        direct = d(clip[:, :, [0, 4, 8]], frame_times=torch.tensor([[0.0, 4.0, 8.0]] * 6)).logits
    assert scored.shape == (6,) and torch.isfinite(scored).all()
    torch.testing.assert_close(picked, direct)
    d.train()
    try:
        torch.manual_seed(0)
        index = d.pick_frames(500, 16, torch.device("cpu"))
    finally:
        d.eval()
    spans = set((index[:, -1] - index[:, 0]).tolist())
    assert spans == {2, 4, 8} and index.min() >= 0 and index.max() <= 15
    assert (index[:, 1:] > index[:, :-1]).all()


def test_random_frame_times_follow_the_authors_sampler():
    gen = torch.Generator().manual_seed(0)
    times = random_frame_times(2000, num_frames=3, clip_frames=1024, max_dist=32, generator=gen)
    spans = (times[:, 2] - times[:, 0]).long()
    assert set(spans.tolist()) == {2, 4, 8, 16, 32}
    assert times.min() >= 0 and (times[:, 2] <= 1023).all() and (times.frac() == 0).all()
    frac = random_frame_times(50, num_frames=3, clip_frames=64, max_dist=32, fractional=True, generator=gen)
    assert (frac.frac() != 0).any() and (frac[:, 2] <= 63).all()
    with pytest.raises(ValueError, match="too short"):
        random_frame_times(1, num_frames=3, clip_frames=2, max_dist=32)


def test_conditional_model_uses_labels_in_mapping_motion_and_discriminator():
    torch.manual_seed(0)
    model = vganzoo.create("stylegan-v", **TINY, num_classes=3).eval()
    g, d = model.generator, model.discriminators["video"]
    assert g.mapping.embed is not None and g.motion.layers[0].weight.shape[1] == 16 + 3
    a = model.sample(1, seed=0, labels=0, frames=4)
    b = model.sample(1, seed=0, labels=2, frames=4)
    assert not torch.equal(a, b)
    with torch.no_grad():
        clip = torch.rand(2, 1, 3, 32, 32) * 2 - 1
        s0 = d(clip, labels=torch.tensor([0, 0])).logits
        s1 = d(clip, labels=torch.tensor([1, 1])).logits
    assert not torch.equal(s0, s1)
    with pytest.raises(ValueError, match="labels are required"):
        d(clip)


def test_noise_inputs():
    torch.manual_seed(0)
    model = vganzoo.create("stylegan-v", **TINY, use_noise=True).eval()
    names = [n for n, _ in model.generator.named_parameters() if "noise_strength" in n]
    assert len(names) == 2 * 4 - 1  # conv0 and conv1 at 8..32, conv1 at 4
    with torch.no_grad():
        for _, p in model.generator.named_parameters():
            if p.ndim == 0:
                p.fill_(0.5)
    a = model.sample(1, seed=0, frames=2)
    torch.testing.assert_close(model.sample(1, seed=0, frames=2), a)  # eval: the fixed noise
    latents = model.generator.sample_latents(1, generator=torch.Generator().manual_seed(0), frames=2)
    with torch.no_grad():
        r1 = model.generator(**latents, noise_mode="random")
        r2 = model.generator(**latents, noise_mode="random")
    assert not torch.equal(r1, r2)
    with pytest.raises(ValueError, match="noise_mode must be"):
        model.generator(**latents, noise_mode="loud")


def test_truncation_pulls_towards_the_average_w(tiny):
    g = tiny.generator
    with torch.no_grad():
        g.mapping.w_avg.normal_()
    assert not torch.equal(
        tiny.sample(2, seed=0, frames=2), tiny.sample(2, seed=0, frames=2, truncation_psi=0.5)
    )
    latents = g.sample_latents(2, generator=torch.Generator().manual_seed(0), frames=2)
    latents["motion_z"] = latents["motion_z"][:1].repeat(2, 1, 1)  # other content, the same motion
    with torch.no_grad():
        content = g(**latents)
        average = g(**latents, truncation_psi=0.0)  # w = w_avg for both
    assert (content[0] - content[1]).abs().max() > 0.1
    torch.testing.assert_close(average[0], average[1])


def test_recipe_is_the_authors():
    model = vganzoo.create("stylegan-v", **TINY)
    r = model.recipe
    assert r["adversarial_loss"] == "bce" and r["d_steps"] == 1 and r["batch_size"] == 16
    g, d = r["optimizers"]["generator"], r["optimizers"]["discriminators"]
    assert g["lr"] == pytest.approx(0.0025 * 4 / 5) and g["betas"] == pytest.approx([0.0, 0.99**0.8])
    assert d["lr"] == pytest.approx(0.0025 * 16 / 17) and d["betas"] == pytest.approx(
        [0.0, 0.99 ** (16 / 17)]
    )
    (r1,) = r["regularizers"]
    gamma = 0.0002 * 32**2 / 16
    assert r1["name"] == "r1" and r1["every"] == 16 and r1["weight"] == pytest.approx(gamma / 3 * 16)
    assert r["ema"]["decay"] == pytest.approx(0.5 ** (32 / 10_000))
    with torch.device("meta"):
        paper = vganzoo.create("stylegan-v").recipe
    assert paper["batch_size"] == 64 and paper["regularizers"][0]["weight"] == pytest.approx(0.2048 / 3 * 16)
    vganzoo.train.resolve_recipe(r, roles=["video"])  # valid for the trainer


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"frames": 2}, "sparse_frames .* <= frames"),
        ({"max_frames": 8}, "frames .* <= max_frames"),
        ({"sparse_frames": 1}, "sparse_frames must be at least 2"),
        ({"concat_res": 32}, "concat_res must be a power of two"),
        ({"concat_res": 4}, "concat_res"),
        ({"motion_z_distance": 0}, "motion_z_distance must be a positive number"),
        ({"conv_clamp": -1}, "conv_clamp must be a positive number or null"),
        ({"fps": 0}, "fps must be a number from 0.01 to 1000"),
        ({"fps": 1e308}, "fps must be a number from 0.01 to 1000"),
        ({"max_frames": 10**12}, "max_frames must be at most 1,000,000"),
        ({"use_noise": 1}, "use_noise must be true or false"),
        ({"resolution": 16}, "resolution must be one of"),
    ],
)
def test_bad_configs_name_the_setting(overrides, match):
    with pytest.raises(InvalidConfigError, match=match), torch.device("meta"):
        vganzoo.create("stylegan-v", **{**TINY, **overrides})


def test_bad_inputs_name_the_argument(tiny):
    with pytest.raises(ValueError, match="frames must be an int from 1 to"):
        tiny.sample(1, frames=0)
    with pytest.raises(ValueError, match="fps must be a number from 0.01 to 1000"):
        tiny.sample(1, fps=-2)
    with pytest.raises(ValueError, match="fps must be a number from 0.01 to 1000"):
        tiny.sample(1, frames=8, fps=1e-7)  # the CLI's --fps bounds
    g, d = tiny.generator, tiny.discriminators["video"]
    latents = g.sample_latents(2, generator=torch.Generator().manual_seed(0), frames=3)
    with pytest.raises(ValueError, match=r"motion_z must have shape \(2, L, 16\)"):
        g(latents["z"], latents["motion_z"][:1], latents["frame_times"])
    with pytest.raises(TypeError, match="frame_times must be a floating-point tensor"):
        g(latents["z"], latents["motion_z"], latents["frame_times"].long())
    with pytest.raises(ValueError, match="needs clips of at least 3 frames"):
        d(torch.zeros(1, 1, 2, 32, 32))
    with pytest.raises(ValueError, match="gaps between frames must be in"):
        d(torch.zeros(1, 1, 3, 32, 32), frame_times=torch.tensor([[0.0, 1.0, 100.0]]))
    with pytest.raises(ValueError, match=r"video must have shape \(N, 1, T, 32, 32\)"):
        d(torch.zeros(1, 3, 3, 32, 32))


def test_empty_batches(tiny):
    assert tiny.sample(0, seed=0, frames=5).shape == (0, 1, 5, 32, 32)
    assert tiny.discriminators["video"](torch.zeros(0, 1, 3, 32, 32)).logits.shape == (0,)


def test_components_build_alone():
    g = StyleGANVGenerator(**{k: v for k, v in TINY.items() if k not in ("time_embed_dim",)})
    d = StyleGANVDiscriminator(
        resolution=32, frames=16, channels=1, width=0.03125, max_frames=64, time_embed_dim=8
    )
    assert g.frames == 16 and d.role == "video"


def test_training_smoke_and_resume(tmp_path):
    """A few iterations through vganzoo.train on the built-in digits, then a resume that reaches the
    uninterrupted run's weights (the sparse frame times ride along to the discriminator)."""
    from safetensors.torch import load_file

    from vganzoo.train import train

    options = dict(
        data="moving-digits",
        model_overrides=TINY,
        batch_size=4,
        progress=False,
        sample_every=0,
        tensorboard=False,
        log_every=1,
        device="cpu",
        num_samples=2,
        dataset_kwargs={"length": 16},
    )
    full = train("stylegan-v", out=str(tmp_path / "full"), steps=3, checkpoint_every=0, **options)
    assert full.status == "completed" and full.step == 3
    assert math.isfinite(full.metrics["d_loss/video"]) and math.isfinite(full.metrics["g_loss"])
    train("stylegan-v", out=str(tmp_path / "part"), steps=2, checkpoint_every=1, **options)
    resumed = train(
        "stylegan-v", out=str(tmp_path / "part"), steps=3, resume=True, checkpoint_every=1, **options
    )
    assert resumed.step == 3
    a = load_file(str(full.export_dir / "generator.safetensors"))
    b = load_file(str(resumed.export_dir / "generator.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    model = vganzoo.load(f"local-dir:{resumed.export_dir}")
    assert model.sample(1, seed=0, frames=20).shape == (1, 1, 20, 32, 32)


def test_cli_samples_any_length_and_frame_rate(tiny, tmp_path, capsys):
    from vganzoo import videoio
    from vganzoo.cli import main as cli_main

    folder = tmp_path / "weights"
    vganzoo.save_pretrained(tiny, str(folder))
    out = tmp_path / "clip.gif"
    args = ["sample", str(folder), "--n", "1", "--seed", "3", "--out", str(out)]
    assert cli_main([*args, "--frames", "20", "--fps", "16"]) == 0
    assert "(1, 1, 20, 32, 32)" in capsys.readouterr().out
    written = videoio.read_video(out)[:, 2 : 2 + 32, 2 : 2 + 32, 0]  # inside the grid's border
    expected = tiny.sample(1, seed=3, frames=20, fps=16)
    assert torch.equal(written, videoio.to_uint8(expected[0])[0])
    assert cli_main(args) == 0  # default: the config's length, at the data's frame rate
    assert "(1, 1, 16, 32, 32)" in capsys.readouterr().out
    # a latent walk renders the clip asked for too (it ignored --frames / --fps)
    assert cli_main([*args, "--interpolate", "2", "--frames", "6", "--fps", "16"]) == 0
    assert ", 1, 6, 32, 32)" in capsys.readouterr().out
    assert videoio.read_video(out).shape[0] == 6


def test_latent_walk_takes_the_clip_options(tiny):
    from vganzoo.sampling import latent_walk

    videos, _ = latent_walk(tiny, 2, clip_options={"frames": 5, "fps": 50})
    assert videos.shape[2] == 5
    walked, _ = latent_walk(tiny, 2, clip_options={"frames": 5, "fps": 50})
    assert torch.equal(walked, videos)
    with pytest.raises(ValueError, match="fps must be a number from"):
        latent_walk(tiny, 2, clip_options={"fps": 0})
    tgan = vganzoo.create("tgan", resolution=32, width=0.125)
    with pytest.raises(ValueError, match=r"clip_options: TGANGenerator renders clips of a fixed length"):
        latent_walk(tgan, 2, clip_options={"frames": 5})


def test_half_precision_models_keep_exact_frame_times(tiny):
    import copy

    half = copy.deepcopy(tiny).to(torch.bfloat16)
    videos, latents = half.sample(1, seed=0, frames=260, return_latents=True)
    assert videos.dtype == torch.bfloat16 and latents["z"].dtype == torch.bfloat16
    assert latents["frame_times"].dtype == torch.float32 and latents["frame_times"][0, -1] == 259  # not 260


def test_motion_codes_count_in_the_memory_check(tiny, monkeypatch):
    """Slow clips need frames x (data fps / fps) motion codes: refused before they are drawn."""
    from vganzoo.errors import ResourceLimitError

    g = tiny.generator
    codes = g.motion.codes_needed((8 - 1) * g.fps / 0.01, g.max_frames)
    needed = codes * g.motion_z_dim * 4
    monkeypatch.setenv("VGANZOO_MEMORY_LIMIT", str(needed - 1))
    with pytest.raises(ResourceLimitError, match=r"fps=0.01 \(.* motion codes each\)"):
        tiny.sample(1, frames=8, fps=0.01)
    monkeypatch.setenv("VGANZOO_MEMORY_LIMIT", str(needed + 10**7))
    assert tiny.sample(1, frames=2, fps=0.01).shape[2] == 2
