"""`vganzoo eval --protocol`: scoring a weight set against a video folder with a progress bar, the result
JSON, and the one-line errors (exit 2) for a wrong detector, too few clips and a stale cache."""

from __future__ import annotations

import hashlib
import json
import pickle

import pytest
import torch
from protocol_fixtures import (
    PROTOCOL_MODEL,
    NoKwargsScript,
    TinyC3DScript,
    TinyI3DScript,
    WrongSizeI3DScript,
    pytorch_i3d_file,
    save_script,
    tgan2_c3d_files,
    tiny_model,
    write_frame_folder,
)
from torch import nn

import vganzoo
from vganzoo.cli import main
from vganzoo.metrics import evaluate_protocol

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def setup(tmp_path):
    weights = vganzoo.save_pretrained(tiny_model(resolution=6), tmp_path / "weights")
    data = write_frame_folder(tmp_path / "data", [18, 16, 20, 17], size=6)
    detector = save_script(TinyI3DScript(), tmp_path / "i3d_torchscript.pt")
    return tmp_path, weights, data, detector


def _eval(*args: str) -> list[str]:
    return ["eval", *args]


def test_cli_scores_a_weight_set_against_a_video_folder(setup, capsys):
    tmp_path, weights, data, detector = setup
    out = tmp_path / "scores.json"
    args = _eval(
        str(weights), "--protocol", "stylegan-v-fvd16", "--data", str(data), "--detector", str(detector)
    )
    args += [
        "--n",
        "4",
        "--n-real",
        "4",
        "--num-runs",
        "2",
        "--seed",
        "1",
        "--real-cache",
        "off",
        "--out",
        str(out),
    ]
    code = main(args)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "stylegan-v-fvd16  fvd" in captured.out and "NOT the published counts" in captured.out
    assert "vganzoo stylegan-v-fvd16" in captured.err and "clip" in captured.err  # the progress bar
    assert "estimated time:" in captured.err
    result = json.loads(out.read_text())
    proto = result["protocol"]
    assert proto["name"] == "stylegan-v-fvd16" and proto["definition"]["n_generated"] == 2048
    assert proto["detector"]["sha256"] == hashlib.sha256(detector.read_bytes()).hexdigest()
    assert proto["detector"]["loaded_with"] == "torch.jit.load"
    assert proto["counts"] == {"n_generated": 4, "n_real": 4, "num_runs": 2, "published": False}
    assert proto["generated"]["run_seeds"] == [1, 1_000_001]
    assert proto["generated"]["model"]["requested"] == str(weights)
    assert proto["data"]["fingerprint"] and proto["data"]["draws"]["1"]["clips"] == 4
    assert "sqrtm" in proto["arithmetic"] and proto["versions"]["scipy"]
    assert len(result["runs"]) == 2 and result["scores"]["num_runs"] == 2
    again = evaluate_protocol(
        vganzoo.load(f"local-dir:{weights}"),
        data,
        "stylegan-v-fvd16",
        detector=detector,
        n_generated=4,
        n_real=4,
        num_runs=2,
        seed=1,
        real_cache="off",
    )
    assert again["scores"] == result["scores"]  # the JSON holds what reproduces the number


def _fails(capsys, args: list[str], *needles: str) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    message = [line for line in err if line.startswith("vganzoo eval: error:")]
    assert len(message) == 1, err
    for needle in needles:
        assert needle in message[0], message[0]
    return message[0]


def test_wrong_detectors_are_one_line_errors(setup, capsys):
    tmp_path, weights, data, _ = setup
    base = _eval(str(weights), "--protocol", "stylegan-v-fvd16", "--data", str(data), "--no-progress")
    base += ["--n", "4", "--n-real", "4", "--real-cache", "off", "--detector"]
    wrong = save_script(WrongSizeI3DScript(), tmp_path / "wrong.pt")
    _fails(capsys, [*base, str(wrong)], "returned (4, 300)", "(N, 400) features")
    no_kwargs = save_script(NoKwargsScript(), tmp_path / "nokw.pt")
    _fails(capsys, [*base, str(no_kwargs)], "takes no rescale, resize, return_features")
    state = tmp_path / "state.pt"
    torch.save(nn.Linear(2, 2).state_dict(), state)
    _fails(capsys, [*base, str(state)], "torch.save checkpoint (a pickle), not TorchScript")
    safetensors, _ = pytorch_i3d_file(tmp_path)
    _fails(capsys, [*base, str(safetensors)], "a TorchScript file", "is safetensors")
    _fails(capsys, [*base, str(tmp_path / "missing.pt")], "not found")


class _Trap:
    def __reduce__(self):
        return (open, ("TRAPPED", "w"))


def test_a_pickle_is_refused_without_being_unpickled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(_Trap()))
    data = write_frame_folder(tmp_path / "data", [16, 16], size=4)
    with pytest.raises(ValueError, match="is a pickle, not a TorchScript archive"):
        evaluate_protocol(
            tiny_model(resolution=4), data, "stylegan-v-fvd16", detector=path, n_generated=2, n_real=2
        )
    assert not (tmp_path / "TRAPPED").exists()


def test_detector_contracts_of_the_other_protocols(tmp_path):
    model = tiny_model(resolution=6)

    class Logits(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.float().mean(dim=(1, 2, 3, 4))[:, None].expand(-1, 101) * torch.arange(101.0)

    logits = save_script(Logits(), tmp_path / "c3d_logits.pt")
    with pytest.raises(ValueError, match="rows that are not probabilities"):
        evaluate_protocol(model, None, "stylegan-v-is", detector=logits, n_generated=10)
    torchscript = save_script(TinyC3DScript(), tmp_path / "c3d.pt")
    with pytest.raises(ValueError, match="is TorchScript .*vganzoo convert tgan2-c3d"):
        evaluate_protocol(model, None, "tgan2-is", detector=torchscript, n_generated=4)
    i3d, _ = pytorch_i3d_file(tmp_path)
    with pytest.raises(ValueError, match="holds i3d weights, but tgan2-is needs"):
        evaluate_protocol(model, None, "tgan2-is", detector=i3d, n_generated=4)
    with pytest.raises(ValueError, match="tgan2-is needs --detector"):
        evaluate_protocol(model, None, "tgan2-is", n_generated=4)
    with pytest.raises(ValueError, match="scores generated clips only"):
        evaluate_protocol(model, tmp_path, "tgan2-is", detector=i3d, n_generated=4)


def test_too_few_clips_and_a_stale_cache_are_one_line_errors(setup, capsys):
    tmp_path, weights, data, detector = setup
    base = _eval(str(weights), "--protocol", "stylegan-v-fvd16", "--data", str(data), "--no-progress")
    base += ["--detector", str(detector), "--n", "4"]
    _fails(capsys, base, "gives 4 videos of at least 16 frames", "needs 2048 real clips", "--n-real")
    _fails(capsys, [*base, "--n-real", "5"], "needs 5 real clips")
    cache = tmp_path / "ucf-real.safetensors"
    assert main([*base, "--n-real", "4", "--real-cache", str(cache)]) == 0
    capsys.readouterr()
    (data / "video_02" / "frame_019.png").unlink()
    _fails(capsys, [*base, "--n-real", "4", "--real-cache", str(cache)], "made from other data files")


def test_a_built_in_dataset_as_protocol_data_says_what_protocols_read(setup, capsys, monkeypatch):
    tmp_path, weights, _, detector = setup
    monkeypatch.chdir(tmp_path)  # no folder named moving-digits here
    argv = _eval(str(weights), "--protocol", "stylegan-v-fvd16", "--data", "moving-digits", "--no-progress")
    _fails(
        capsys,
        [*argv, "--detector", str(detector), "--n", "4", "--n-real", "4"],
        "'moving-digits' is a built-in dataset, but protocols read a folder of videos",
        "fvd-digits",
    )


def test_option_families_do_not_mix(setup, capsys):
    _, weights, data, detector = setup
    base = _eval(str(weights), "--data", str(data), "--no-progress")
    _fails(
        capsys, [*base, "--protocol", "stylegan-v-fvd16", "--frames", "8"], "--frames: fixed by --protocol"
    )
    _fails(capsys, [*base, "--detector", str(detector)], "--detector: only with --protocol")
    assert main([*base, "--protocol", "nope"]) == 2  # argparse's choices, as one line
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_cli_protocol_names_match_the_api():
    from vganzoo.cli import eval as cli_eval
    from vganzoo.metrics.protocols import PROTOCOLS

    assert tuple(PROTOCOLS) == cli_eval.PROTOCOLS


def test_cli_converts_tgan2_c3d(tmp_path, capsys):
    tgan2_c3d_files(tmp_path)  # writes conv3d_deepnetA_ucf.npz and mean2.npz
    out = tmp_path / "cli.safetensors"
    args = ["convert", "tgan2-c3d", str(tmp_path / "conv3d_deepnetA_ucf.npz"), str(out)]
    assert main([*args, "--mean", str(tmp_path / "mean2.npz")]) == 0
    written = out.read_bytes()
    assert hashlib.sha256(written).hexdigest() in capsys.readouterr().out
    # an existing DST is kept unless --force
    assert main([*args, "--mean", str(tmp_path / "mean2.npz")]) == 2
    err = capsys.readouterr().err
    assert "dst: " in err and "already exists" in err and "--force" in err and "Traceback" not in err
    out.write_bytes(b"stale")
    assert main([*args, "--mean", str(tmp_path / "mean2.npz"), "--force"]) == 0
    assert out.read_bytes() == written  # replaced by the conversion, byte for byte (sorted header)
    assert hashlib.sha256(written).hexdigest() in capsys.readouterr().out
    evil = tmp_path / "objects.npz"
    import numpy as np

    np.savez(evil, **{"conv1a/W": np.array([object()], dtype=object)})
    bad = ["convert", "tgan2-c3d", str(evil), str(out), "--mean", str(tmp_path / "mean2.npz"), "--force"]
    assert main(bad) == 2
    assert "not a numpy .npz of plain arrays" in capsys.readouterr().err
    assert out.read_bytes() == written  # a failed conversion leaves the old file whole


def test_protocol_model_is_registered():
    assert PROTOCOL_MODEL in vganzoo.list_models()
