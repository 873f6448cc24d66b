"""vganzoo.hub: save/load round trip, verification, offline use and the Hub protocol (local server)."""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

import huggingface_hub
import huggingface_hub.constants
import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub_server import FakeHub

import vganzoo
from vganzoo import hub, registry
from vganzoo.models.base import DiscriminatorOutput, VideoGAN

MODEL = "hubtest-gan"
REPO = "vganzoo-test/hubtest-tiny"
DEFAULT_CONFIG = {"resolution": 8, "frames": 3, "channels": 1, "latent_dim": 4}


# ----------------------------------------------------------------------------------------------
# A tiny model following the VideoGAN protocols, with a spectral-norm layer and a tied weight
# ----------------------------------------------------------------------------------------------
class TinyGenerator(nn.Module):
    def __init__(self, *, resolution: int, frames: int, channels: int, latent_dim: int):
        super().__init__()
        self.resolution, self.frames, self.channels, self.num_classes = resolution, frames, channels, 0
        self.latent_dim = latent_dim
        self.mix = spectral_norm(nn.Linear(latent_dim, latent_dim))
        self.time_embedding = nn.Parameter(torch.randn(frames, latent_dim))
        self.to_frame = nn.Linear(latent_dim, channels * resolution * resolution)
        self.to_frame_alias = self.to_frame  # the same module under two names: tied tensors in the state dict
        self.register_buffer("gain", torch.ones(1))

    def sample_latents(self, n, *, generator, labels=None):
        return {"z": torch.randn(n, self.latent_dim, generator=generator)}

    def forward(self, z):
        per_frame = self.mix(z)[:, None, :] + self.time_embedding[None]  # (N, T, latent)
        frames = (self.to_frame_alias(per_frame) * self.gain).tanh()  # (N, T, C*H*W)
        return frames.view(
            z.shape[0], self.frames, self.channels, self.resolution, self.resolution
        ).transpose(1, 2)


class TinyDiscriminator(nn.Module):
    def __init__(self, *, resolution: int, channels: int):
        super().__init__()
        self.score = nn.Linear(channels * resolution * resolution, 1)

    def forward(self, video, labels=None):
        return DiscriminatorOutput(self.score(video.mean(dim=2).flatten(1)))


def tiny_factory(*, resolution, frames, channels, latent_dim):
    """Tiny test model for vganzoo.hub."""
    gen = TinyGenerator(resolution=resolution, frames=frames, channels=channels, latent_dim=latent_dim)
    discs = {role: TinyDiscriminator(resolution=resolution, channels=channels) for role in ("image", "video")}
    return VideoGAN(gen, discs)


def register(pretrained=()):
    registry.register_model(
        MODEL, family="hubtest", default_config=DEFAULT_CONFIG, pretrained=list(pretrained), overwrite=True
    )(tiny_factory)


@pytest.fixture(autouse=True)
def tiny_model():
    register()
    yield
    registry.core._models.pop(MODEL, None)


def spec_for(
    folder: Path, *, tag="tiny", repo_id=REPO, revision=None, bundled=None
) -> registry.PretrainedSpec:
    return hub.spec_from_folder(folder, tag=tag, repo_id=repo_id, revision=revision, bundled=bundled)


@pytest.fixture
def trained(tmp_path):
    """A model with non-default weights (EMA included) saved with save_pretrained."""
    torch.manual_seed(0)
    model = vganzoo.create(MODEL)
    model.add_ema()
    with torch.no_grad():
        for p in model.generator_ema.parameters():
            p.mul_(0.5)
    folder = hub.save_pretrained(
        model,
        tmp_path / "saved",
        metadata={
            "license": "mit",
            "dataset": "moving-digits",
            "training_command": "vganzoo train hubtest-gan",
            "metrics": {"fvd": {"value": 1.5, "protocol": "N=16"}},
        },
    )
    return model, folder


@pytest.fixture
def online(monkeypatch):
    """A running local Hub; offline mode (forced by conftest) is lifted for this test only."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    for var in hub.ENDPOINT_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    with FakeHub() as server:
        yield server


class Published(NamedTuple):
    model: VideoGAN
    folder: Path
    sha: str
    cache: Path
    server: FakeHub


@pytest.fixture
def published(online, trained, tmp_path):
    """The trained weight set committed to the local Hub and registered as hubtest-gan.tiny (pinned)."""
    model, folder = trained
    sha = online.commit_folder(REPO, folder)
    register([spec_for(folder, revision=sha)])
    return Published(model, folder, sha, tmp_path / "cache", online)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def no_fast_retry_sleep(monkeypatch):
    """huggingface_hub sleeps 1 s before resuming a broken download; skip the wait in tests."""
    import huggingface_hub.file_download as fd

    monkeypatch.setattr(fd.time, "sleep", lambda seconds: None)


# ----------------------------------------------------------------------------------------------
# save_pretrained / local-dir
# ----------------------------------------------------------------------------------------------
def test_save_pretrained_layout_and_card(trained):
    model, folder = trained
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        [
            "config.json",
            "weights.json",
            "README.md",
            "generator.safetensors",
            "generator_ema.safetensors",
            "discriminator.image.safetensors",
            "discriminator.video.safetensors",
        ]
    )
    index = json.loads((folder / "weights.json").read_text())
    for filename, digest in index["sha256"].items():
        assert hub.sha256_file(folder / filename) == digest
    assert json.loads((folder / "config.json").read_text()) == model.config
    card = (folder / "README.md").read_text()
    front = card.split("---")[1]
    assert 'library_name: "vganzoo"' in front and 'license: "mit"' in front and "moving-digits" in front
    assert "vganzoo train hubtest-gan" in card and "N=16" in card
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".saved")]  # no temp folder left


def test_saving_twice_gives_identical_files(trained, tmp_path):
    """Same model, same bytes: sha256 pins can be reproduced by saving again (safetensors writes its
    header metadata in hash-map order; ours is sorted)."""
    model, folder = trained
    again = hub.save_pretrained(
        model, str(tmp_path / "again"), metadata=json.loads((folder / "weights.json").read_text())["metadata"]
    )
    for _ in range(3):
        third = hub.save_pretrained(
            model,
            str(tmp_path / "third"),
            overwrite=True,
            metadata=json.loads((folder / "weights.json").read_text())["metadata"],
        )
        for path in sorted(folder.glob("*.safetensors")):
            assert (
                (again / path.name).read_bytes() == path.read_bytes() == (third / path.name).read_bytes()
            ), path.name


def test_local_dir_round_trip_same_samples(trained):
    model, folder = trained
    loaded = vganzoo.load(f"local-dir:{folder}", components="all")
    assert same_weights(loaded.generator, model.generator)
    assert same_weights(loaded.generator_ema, model.generator_ema)
    assert set(loaded.discriminators) == {"image", "video"}
    assert same_weights(loaded.discriminators["video"], model.discriminators["video"])
    model.eval()
    assert torch.equal(loaded.sample(2, seed=3, use_ema=False), model.sample(2, seed=3, use_ema=False))
    assert torch.equal(loaded.sample(2, seed=3), model.sample(2, seed=3))
    # the tied weight still is one tensor after loading
    assert loaded.generator.to_frame.weight is loaded.generator.to_frame_alias.weight


def test_load_generator_only_drops_the_rest(trained):
    model, folder = trained
    loaded = vganzoo.load(f"local-dir:{folder}")  # default: what sampling needs
    assert len(loaded.discriminators) == 0 and same_weights(loaded.generator_ema, model.generator_ema)
    assert not loaded.training
    model.eval()
    assert torch.equal(loaded.sample(2, seed=4), model.sample(2, seed=4))
    bare = vganzoo.load(f"local-dir:{folder}", components="generator")
    assert len(bare.discriminators) == 0 and bare.generator_ema is None
    one = vganzoo.load(f"local-dir:{folder}", components=["generator", "discriminator.image"])
    assert list(one.discriminators) == ["image"]
    with pytest.raises(hub.WeightsNotFoundError, match="discriminator.nope"):
        vganzoo.load(f"local-dir:{folder}", components=["discriminator.nope"])
    with pytest.raises(ValueError, match="components"):
        vganzoo.load(f"local-dir:{folder}", components=["decoder"])


def test_load_device_and_dtype(trained):
    _model, folder = trained
    loaded = vganzoo.load(f"local-dir:{folder}", dtype="float64", device="cpu")
    assert loaded.generator.to_frame.weight.dtype == torch.float64
    with pytest.raises(TypeError, match="dtype"):
        vganzoo.load(f"local-dir:{folder}", dtype="floaty")


@pytest.mark.cuda
def test_load_onto_cuda_and_save_back(trained, tmp_path):
    model, folder = trained
    on_gpu = vganzoo.load(f"local-dir:{folder}", device="cuda")
    assert on_gpu.generator.to_frame.weight.is_cuda
    model.eval()
    torch.testing.assert_close(on_gpu.sample(2, seed=7).cpu(), model.sample(2, seed=7), atol=1e-5, rtol=1e-5)
    again = vganzoo.load(f"local-dir:{hub.save_pretrained(on_gpu, tmp_path / 'from-gpu')}")
    assert same_weights(again.generator, model.generator)


def test_save_pretrained_refuses_non_empty_folder_unless_overwrite(trained):
    model, folder = trained
    before = (folder / "generator.safetensors").read_bytes()
    with pytest.raises(FileExistsError):
        hub.save_pretrained(model, folder)
    assert (folder / "generator.safetensors").read_bytes() == before
    with torch.no_grad():
        model.generator.time_embedding.add_(1.0)
    hub.save_pretrained(model, folder, overwrite=True)
    assert (folder / "generator.safetensors").read_bytes() != before
    assert sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(".")) == []


def test_save_pretrained_rejects_bad_input(tmp_path):
    with pytest.raises(TypeError, match="VideoGAN"):
        hub.save_pretrained(nn.Linear(2, 2), tmp_path / "x")
    model = vganzoo.create(MODEL)
    model.config = {}
    with pytest.raises(ValueError, match="config"):
        hub.save_pretrained(model, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_local_dir_hash_mismatch_names_file_and_hashes(trained):
    _model, folder = trained
    path = folder / "generator.safetensors"
    expected = hub.sha256_file(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(hub.HashMismatchError) as info:
        vganzoo.load(f"local-dir:{folder}")
    message = str(info.value)
    assert (
        "generator.safetensors" in message
        and expected in message
        and hub.sha256_file(path) in message
        and str(folder) in message
    )


def _rewrite_index(folder: Path) -> None:
    index = json.loads((folder / "weights.json").read_text())
    index["sha256"] = {f: hub.sha256_file(folder / f) for f in index["sha256"]}
    (folder / "weights.json").write_text(json.dumps(index))


def test_strict_loading_lists_missing_unexpected_and_mismatched_keys(trained):
    from safetensors.torch import load_file, save_file

    _model, folder = trained
    path = folder / "generator.safetensors"
    tensors = load_file(str(path))
    del tensors["time_embedding"]
    tensors["extra.weight"] = torch.zeros(2)
    tensors["gain"] = torch.ones(3)
    save_file(tensors, str(path))
    _rewrite_index(folder)
    with pytest.raises(hub.StateDictMismatchError) as info:
        vganzoo.load(f"local-dir:{folder}")
    err = info.value
    assert err.missing == ["time_embedding"] and err.unexpected == ["extra.weight"]
    assert len(err.mismatched) == 1 and err.mismatched[0].startswith("gain")
    assert "time_embedding" in str(err) and "extra.weight" in str(err) and "gain" in str(err)
    with pytest.warns(UserWarning, match="non-strictly"):
        loaded = vganzoo.load(f"local-dir:{folder}", strict=False)
    assert torch.equal(loaded.generator.to_frame.weight, tensors["to_frame.weight"])


def test_local_dir_errors(tmp_path):
    with pytest.raises(hub.WeightsNotFoundError, match="not a folder"):
        vganzoo.load(f"local-dir:{tmp_path / 'missing'}")
    with pytest.raises(hub.WeightsNotFoundError, match="weights.json"):
        vganzoo.load(f"local-dir:{tmp_path}")
    (tmp_path / "weights.json").write_text('{"format": "other"}')
    with pytest.raises(hub.WeightsError, match="not a vganzoo weight index"):
        vganzoo.load(f"local-dir:{tmp_path}")


def test_fp16_storage_loads_into_float32_model(trained, tmp_path):
    from safetensors.torch import load_file

    model, folder = trained
    half = hub.save_pretrained(model, tmp_path / "half", dtype=torch.float16)
    assert load_file(str(half / "generator.safetensors"))["to_frame.weight"].dtype == torch.float16
    size = (half / "generator.safetensors").stat().st_size
    assert size < 0.75 * (folder / "generator.safetensors").stat().st_size
    loaded = vganzoo.load(f"local-dir:{half}")
    assert loaded.generator.to_frame.weight.dtype == torch.float32
    torch.testing.assert_close(
        loaded.generator.to_frame.weight, model.generator.to_frame.weight, atol=1e-2, rtol=1e-2
    )


# ----------------------------------------------------------------------------------------------
# names
# ----------------------------------------------------------------------------------------------
def test_arch_without_pretrained_weights_points_to_create():
    with pytest.raises(hub.NoPretrainedWeightsError, match=r"vganzoo.create\('hubtest-gan'\)"):
        vganzoo.load(MODEL)


def test_unknown_tag_lists_available(trained):
    _model, folder = trained
    register([spec_for(folder, revision="0" * 40)])
    with pytest.raises(hub.NoPretrainedWeightsError, match="hubtest-gan.tiny"):
        vganzoo.load(f"{MODEL}.nope")
    with pytest.raises(ValueError, match="pinned"):
        vganzoo.load(f"{MODEL}.tiny", revision="main")


@pytest.mark.parametrize("name", ["hf-hub:", "hf-hub:noslash", "hf-hub:org/repo@", "hf-hub:a/b/c"])
def test_bad_hf_hub_names(name):
    with pytest.raises(ValueError, match="hf-hub"):
        vganzoo.load(name)


def test_endpoint_must_be_a_url():
    with pytest.raises(ValueError, match="endpoint"):
        hub.resolve_endpoint("ftp://x")


# ----------------------------------------------------------------------------------------------
# Hub: download, cache, offline
# ----------------------------------------------------------------------------------------------
def test_first_download_then_zero_requests_then_offline(published, monkeypatch):
    model, _folder, _sha, cache, server = published
    loaded = vganzoo.load(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url)
    assert same_weights(loaded.generator, model.generator)
    assert server.count("GET") == 3  # config.json, generator and generator_ema
    assert server.count(contains="discriminator") == 0  # sampling never downloads discriminators
    before = len(server.requests)
    again = vganzoo.load(
        MODEL, cache_dir=cache, endpoint=server.url
    )  # default tag, pinned commit: cache only
    assert len(server.requests) == before
    assert torch.equal(again.sample(2, seed=1), loaded.sample(2, seed=1))
    offline = vganzoo.load(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url, local_files_only=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline_env = vganzoo.load(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url)
    assert len(server.requests) == before
    assert torch.equal(offline.sample(1, seed=2), offline_env.sample(1, seed=2))


def test_load_weights_and_pretrained_config_from_the_hub(published):
    """Fine-tuning's two calls go through the same verified download as load()."""
    model, _folder, sha, cache, server = published
    config = hub.pretrained_config(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url)
    assert config == model.config
    target = vganzoo.create(config.pop("model"), **config)
    report = hub.load_weights(target, f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url)
    assert report.repo_id == REPO and report.revision == sha
    assert report.to_dict()["revision"] == sha and "generator_ema" in report.loaded
    assert same_weights(target.generator, model.generator)
    for role in model.discriminators:
        assert same_weights(target.discriminators[role], model.discriminators[role])
    assert server.count("GET", contains="discriminator") == len(model.discriminators)


def test_offline_with_empty_cache_fails_at_once_naming_file(published, monkeypatch):
    _model, _folder, _sha, cache, server = published
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.WeightsNotFoundError) as info:
        vganzoo.load(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url)
    message = str(info.value)
    assert "config.json" in message and f"vganzoo download {MODEL}.tiny" in message and "offline" in message
    with pytest.raises(hub.WeightsNotFoundError, match="local_files_only"):
        vganzoo.load(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url, local_files_only=True)
    assert server.requests == []


def test_offline_missing_component_names_that_file(published):
    _model, _folder, _sha, cache, server = published
    vganzoo.load(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url)
    with pytest.raises(hub.WeightsNotFoundError, match="discriminator.video.safetensors"):
        vganzoo.load(
            f"{MODEL}.tiny",
            components=["generator", "discriminator.video"],
            cache_dir=cache,
            endpoint=server.url,
            local_files_only=True,
        )


def test_endpoint_set_after_import(published, monkeypatch):
    model, _folder, _sha, cache, server = published
    monkeypatch.setenv("VGANZOO_ENDPOINT", server.url)
    loaded = vganzoo.load(f"{MODEL}.tiny", cache_dir=cache / "a")
    assert same_weights(loaded.generator, model.generator) and server.count("GET") == 3
    monkeypatch.delenv("VGANZOO_ENDPOINT")
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    vganzoo.load(f"{MODEL}.tiny", cache_dir=cache / "b")
    assert server.count("GET") == 6


def test_download_fetches_every_component(published):
    _model, folder, _sha, cache, server = published
    paths = hub.download(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url)
    assert set(paths) == {
        "config",
        "generator",
        "generator_ema",
        "discriminator.image",
        "discriminator.video",
    }
    for path in paths.values():
        assert path.read_bytes() == (folder / path.name).read_bytes()
    full = vganzoo.load(
        f"{MODEL}.tiny", components="all", cache_dir=cache, endpoint=server.url, local_files_only=True
    )
    assert set(full.discriminators) == {"image", "video"} and full.generator_ema is not None


def test_unpinned_branch_revision_warns_and_resolves_commit(online, trained, tmp_path):
    model, folder = trained
    sha = online.commit_folder(REPO, folder)
    with pytest.warns(hub.UnpinnedWeightsWarning, match=f"@{sha}"):
        loaded = vganzoo.load(f"hf-hub:{REPO}", cache_dir=tmp_path / "c", endpoint=online.url)
    assert same_weights(loaded.generator, model.generator)
    # every file came from the commit the branch pointed to
    assert online.count("GET", f"/resolve/{sha}/generator.safetensors") == 1
    # a later commit on main is picked up by the unpinned name, not by the pinned one
    with torch.no_grad():
        model.generator.time_embedding.add_(1.0)
    hub.save_pretrained(model, folder, overwrite=True)
    sha2 = online.commit_folder(REPO, folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hub.UnpinnedWeightsWarning)
        newer = vganzoo.load(f"hf-hub:{REPO}", cache_dir=tmp_path / "c", endpoint=online.url)
        older = vganzoo.load(f"hf-hub:{REPO}@{sha}", cache_dir=tmp_path / "c", endpoint=online.url)
        also_newer = vganzoo.load(
            f"hf-hub:{REPO}", revision=sha2, cache_dir=tmp_path / "c", endpoint=online.url
        )
    assert same_weights(newer.generator, model.generator) and same_weights(
        also_newer.generator, model.generator
    )
    assert not same_weights(older.generator, model.generator)
    with pytest.raises(ValueError, match="conflicts"):
        vganzoo.load(f"hf-hub:{REPO}@{sha}", revision=sha2)
    # offline, the branch resolves through the cache's refs: no request
    before = len(online.requests)
    with pytest.warns(hub.UnpinnedWeightsWarning):
        cached = vganzoo.load(f"hf-hub:{REPO}", cache_dir=tmp_path / "c", local_files_only=True)
    assert same_weights(cached.generator, model.generator) and len(online.requests) == before


def test_pinned_spec_on_a_branch_revision(online, trained, tmp_path):
    model, folder = trained
    online.commit_folder(REPO, folder)
    register([spec_for(folder, revision="main")])
    loaded = vganzoo.load(f"{MODEL}.tiny", cache_dir=tmp_path / "c", endpoint=online.url)
    assert same_weights(loaded.generator, model.generator)


def test_hash_mismatch_served_by_server(published):
    _model, folder, _sha, cache, server = published
    good = (folder / "generator.safetensors").read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x01
    server.serve_instead(REPO, "generator.safetensors", bytes(bad))
    with pytest.raises(hub.HashMismatchError) as info:
        vganzoo.load(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url)
    err = info.value
    assert err.filename == "generator.safetensors" and err.expected == hub.sha256_file(
        folder / "generator.safetensors"
    )
    assert err.actual != err.expected and server.url in err.source
    assert err.expected in str(err) and err.actual in str(err)
    assert server.count("GET", "generator.safetensors") == 2  # fetched once more before giving up
    # the bad bytes are not left in the cache under the final name
    cached = [p for p in cache.rglob("*") if p.is_file() and p.read_bytes() == bytes(bad)]
    assert cached == []


def test_corrupted_cached_blob_is_removed_and_fetched_again(published, monkeypatch):
    model, _folder, _sha, cache, server = published
    vganzoo.load(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url)
    blob = Path(os.path.realpath(next(cache.rglob("snapshots/*/generator.safetensors"))))
    blob.write_bytes(blob.read_bytes()[:100])  # truncated on disk
    gets = server.count("GET", "generator.safetensors")
    loaded = vganzoo.load(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url)
    assert same_weights(loaded.generator, model.generator)
    assert server.count("GET", "generator.safetensors") == gets + 1
    # offline: a damaged cache entry is an error naming it, and it is removed
    blob = Path(os.path.realpath(next(cache.rglob("snapshots/*/generator.safetensors"))))
    blob.write_bytes(b"\0" * blob.stat().st_size)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.HashMismatchError, match="removed"):
        vganzoo.load(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url)
    assert not blob.exists()


def test_truncated_download_once_is_resumed(published, monkeypatch):
    model, folder, _sha, cache, server = published
    no_fast_retry_sleep(monkeypatch)
    size = (folder / "generator.safetensors").stat().st_size
    server.truncate(REPO, "generator.safetensors", keep=size // 2, times=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = vganzoo.load(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url)
    assert same_weights(loaded.generator, model.generator)
    assert server.count("GET", "generator.safetensors") == 2


def test_truncated_download_leaves_nothing_under_final_name(published, monkeypatch):
    _model, folder, _sha, cache, server = published
    no_fast_retry_sleep(monkeypatch)
    size = (folder / "generator.safetensors").stat().st_size
    server.truncate(REPO, "generator.safetensors", keep=size // 2)
    with pytest.raises(hub.WeightsError, match="generator.safetensors"):
        vganzoo.load(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url)
    assert list(cache.rglob("snapshots/*/generator.safetensors")) == []
    leftovers = [
        p
        for p in cache.rglob("blobs/*")
        if p.stat().st_size not in (len((folder / "config.json").read_bytes()),)
    ]
    assert leftovers == []  # no partial blob, no .incomplete file


@pytest.mark.parametrize(
    "repo, revision, filename, pattern",
    [
        ("vganzoo-test/missing", None, None, "repo 'vganzoo-test/missing' not found"),
        (REPO, "f" * 40, None, "revision 'f{40}' not found"),
        (REPO, None, "generator.safetensors", "generator.safetensors not found"),
    ],
)
def test_404_kinds_give_clear_errors(published, repo, revision, filename, pattern):
    _model, folder, sha, cache, server = published
    if filename:  # a commit without the generator
        files = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != filename}
        revision = server.commit(REPO, files, replace=True)
    register([spec_for(folder, repo_id=repo, revision=revision or sha)])
    with pytest.raises(hub.WeightsNotFoundError, match=pattern):
        vganzoo.load(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url)


def test_hf_hub_404_kinds(online, tmp_path):
    online.commit("vganzoo-test/not-a-weight-set", {"README.md": b"hello"})
    cases = [
        ("hf-hub:nobody/nothing", "repo 'nobody/nothing' not found"),
        ("hf-hub:vganzoo-test/not-a-weight-set@v9", "revision 'v9' not found"),
        ("hf-hub:vganzoo-test/not-a-weight-set", "weights.json not found"),
    ]
    for name, pattern in cases:
        with pytest.raises(hub.WeightsNotFoundError, match=pattern):
            vganzoo.load(name, cache_dir=tmp_path, endpoint=online.url)


# ----------------------------------------------------------------------------------------------
# Bundled copies
# ----------------------------------------------------------------------------------------------
def test_bundled_copy_is_used_first_and_verified(published, monkeypatch, tmp_path):
    model, folder, sha, cache, server = published
    monkeypatch.setattr(hub.weightsets, "PACKAGE_DIR", tmp_path)
    bundle = tmp_path / "weights" / "tiny"
    bundle.mkdir(parents=True)
    for p in folder.iterdir():
        (bundle / p.name).write_bytes(p.read_bytes())
    register([spec_for(folder, revision=sha, bundled="weights/tiny")])
    loaded = vganzoo.load(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url, components="all")
    assert same_weights(loaded.generator, model.generator) and server.requests == []
    # a damaged bundled file: warned about, fetched from the Hub instead
    (bundle / "generator.safetensors").write_bytes(b"broken")
    with pytest.warns(UserWarning, match="bundled copy"):
        loaded = vganzoo.load(f"{MODEL}.tiny", cache_dir=cache, endpoint=server.url)
    assert (
        same_weights(loaded.generator, model.generator) and server.count("GET", "generator.safetensors") == 1
    )
    # bundled-only spec: works offline; a mismatch is an error, a missing file too
    register([spec_for(folder, repo_id=None, bundled="weights/tiny")])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert same_weights(
        vganzoo.load(f"{MODEL}.tiny", components="discriminators").discriminators["image"],
        model.discriminators["image"],
    )
    with pytest.raises(hub.HashMismatchError, match="bundled copy"):
        vganzoo.load(f"{MODEL}.tiny")
    (bundle / "generator.safetensors").unlink()
    with pytest.raises(hub.WeightsNotFoundError, match="reinstall"):
        vganzoo.load(f"{MODEL}.tiny")


def test_spec_from_folder_matches_weights_json(trained):
    _model, folder = trained
    spec = hub.spec_from_folder(folder, tag="tiny", repo_id=REPO, revision="a" * 40)
    assert spec.files["generator"] == "generator.safetensors" and "config" not in spec.files
    assert spec.sha256["config.json"] == hub.sha256_file(folder / "config.json")
    assert spec.metadata["license"] == "mit"
    (folder / "config.json").write_text("{}")
    with pytest.raises(hub.HashMismatchError):
        hub.spec_from_folder(folder, tag="tiny")


# ----------------------------------------------------------------------------------------------
# push_to_hub
# ----------------------------------------------------------------------------------------------
def test_push_model_then_load_pinned(online, trained, tmp_path, caplog):
    model, _folder = trained
    with caplog.at_level(logging.INFO, logger="vganzoo"):
        sha = hub.push_to_hub(model, "vganzoo-test/pushed", endpoint=online.url, metadata={"license": "mit"})
    out = caplog.text  # the library logs the name to pin (the CLI shows it)
    assert f"hf-hub:vganzoo-test/pushed@{sha}" in out and f"revision={sha!r}" in out
    assert online.repos["vganzoo-test/pushed"].refs["main"] == sha
    files = online.files("vganzoo-test/pushed", sha)
    assert {
        "config.json",
        "weights.json",
        "README.md",
        "generator.safetensors",
        "discriminator.video.safetensors",
    } <= set(files)
    assert b"library_name" in files["README.md"] and b"hf-hub:vganzoo-test/pushed" in files["README.md"]
    with pytest.warns(hub.UnpinnedWeightsWarning):
        loaded = vganzoo.load(
            f"hf-hub:vganzoo-test/pushed@{sha}", cache_dir=tmp_path / "c", endpoint=online.url
        )
    model.eval()
    assert torch.equal(loaded.sample(2, seed=5), model.sample(2, seed=5))


def test_push_folder_to_branch_and_private_flag(online, trained):
    _model, folder = trained
    (folder / "notes.tmp").write_text("not part of the weight set")
    sha = hub.push_to_hub(folder, "vganzoo-test/branchy", revision="v1", private=True, endpoint=online.url)
    assert online.created[-1].get("visibility") == "private" or online.created[-1].get("private") is True
    assert online.repos["vganzoo-test/branchy"].refs["v1"] == sha
    assert "notes.tmp" not in online.files("vganzoo-test/branchy", sha)
    sha_again = hub.push_to_hub(
        folder, "vganzoo-test/branchy", revision="v1", endpoint=online.url
    )  # repo exists: fine
    assert sha_again


def test_push_as_pull_request(online, trained):
    _model, folder = trained
    main_sha = hub.push_to_hub(folder, "vganzoo-test/pr", endpoint=online.url)
    pr_sha = hub.push_to_hub(
        folder, "vganzoo-test/pr", endpoint=online.url, create_pr=True, commit_message="new weights"
    )
    repo = online.repos["vganzoo-test/pr"]
    assert repo.refs["refs/pr/1"] == pr_sha and repo.refs["main"] == main_sha
    with pytest.raises(ValueError, match="create_pr"):
        hub.push_to_hub(folder, "vganzoo-test/pr", endpoint=online.url, create_pr=True, revision="dev")


def test_push_refuses_a_damaged_folder_and_offline_mode(online, trained, monkeypatch):
    _model, folder = trained
    (folder / "generator.safetensors").write_bytes(b"junk")
    with pytest.raises(hub.HashMismatchError):
        hub.push_to_hub(folder, "vganzoo-test/bad", endpoint=online.url)
    assert online.count("POST") == 0
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.WeightsError, match="offline"):
        hub.push_to_hub(folder, "vganzoo-test/bad", endpoint=online.url)


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def test_cli_download_and_push(published, tmp_path, capsys):
    from vganzoo.cli import main

    _model, folder, _sha, cache, server = published
    assert (
        main(
            [
                "download",
                f"{MODEL}.tiny",
                "--endpoint",
                server.url,
                "--cache-dir",
                str(cache),
                "--components",
                "generator",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2 file(s) verified" in out and "generator.safetensors" in out
    assert main(["push", str(folder), "vganzoo-test/cli", "--endpoint", server.url]) == 0
    sha = server.repos["vganzoo-test/cli"].refs["main"]
    assert sha in capsys.readouterr().out


def test_cli_download_without_weights_is_a_user_error(capsys):
    from vganzoo.cli import main

    assert main(["download", MODEL]) == 2
    err = capsys.readouterr().err
    assert "has no pretrained weights; sample or evaluate it with --random-weights" in err  # CLI advice


def test_cli_offline_error_is_one_line(published, monkeypatch, capsys):
    from vganzoo.cli import main

    _model, _folder, _sha, cache, _server = published
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["download", f"{MODEL}.tiny", "--cache-dir", str(cache)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "vganzoo download" in err


def test_overwrite_never_replaces_a_folder_that_is_not_a_weight_set(trained, tmp_path):
    model, folder = trained
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="is not a weight set") as info:
        hub.save_pretrained(model, victim, overwrite=True)
    assert len(str(info.value).splitlines()) == 1
    assert (victim / "notes.txt").read_text() == "keep me" and (victim / "sub").is_dir()
    # a weight set with a stranger file in it is not replaced either (the stranger would be lost)
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        hub.save_pretrained(model, folder, overwrite=True)
    assert (folder / "notes.txt").read_text() == "mine"
    (folder / "notes.txt").unlink()
    with pytest.raises(FileExistsError, match="replace the weight set"):
        hub.save_pretrained(model, folder)
    hub.save_pretrained(model, folder, overwrite=True)
