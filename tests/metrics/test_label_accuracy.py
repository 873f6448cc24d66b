"""``label-accuracy``: the fraction of frames read as the requested digit, averaged over the ten digits."""

from __future__ import annotations

import pytest
import torch

import vganzoo
from vganzoo.cli import main
from vganzoo.data import MovingDigits
from vganzoo.metrics import evaluate
from vganzoo.metrics.digits import NO_DIGIT, NUM_CLASSES
from vganzoo.metrics.label_accuracy import LabelAccuracy

CLIPS_PER_DIGIT = 3


def _clips_by_digit() -> dict[int, torch.Tensor]:
    ds = MovingDigits(num_digits=1, resolution=32, frames=16, length=200, seed=7, split="test")
    by_digit: dict[int, list[torch.Tensor]] = {d: [] for d in range(10)}
    for i in range(len(ds)):
        item = ds[i]
        label = int(item["label"])
        if len(by_digit[label]) < CLIPS_PER_DIGIT:
            by_digit[label].append(item["video"])
        if all(len(v) == CLIPS_PER_DIGIT for v in by_digit.values()):
            break
    return {d: torch.stack(v) for d, v in by_digit.items()}


class ClipModel(torch.nn.Module):
    """A stand-in conditional model: label d gives real clips of digit ``draw(d)``."""

    def __init__(self, clips: dict[int, torch.Tensor], draw=lambda d: d, num_classes: int = 10) -> None:
        super().__init__()
        self.clips, self.draw, self.num_classes = clips, draw, num_classes
        self.calls: list[list[int]] = []

    def sample(self, n, *, seed=None, labels=None, device=None):
        labels = list(range(n)) if labels is None else [int(v) for v in labels]
        self.calls.append(labels)
        return torch.stack([self.clips[self.draw(d) % 10][i % CLIPS_PER_DIGIT] for i, d in enumerate(labels)])


@pytest.fixture(scope="module")
def clips():
    return _clips_by_digit()


def test_counts_frames_read_as_the_label_per_digit():
    acc = LabelAccuracy()
    probs = torch.zeros(2, 4, NUM_CLASSES)
    probs[0, :, 3] = 1.0  # label 3, every frame a 3
    probs[1, :2, 5] = 1.0  # label 5: two frames a 5, two "no digit"
    probs[1, 2:, NO_DIGIT] = 1.0
    acc.update(probs, torch.tensor([3, 5]))
    result = acc.result()
    assert result["label_accuracy"] == pytest.approx(0.75)  # mean of 1.0 and 0.5 (labels with clips)
    assert result["label_accuracy_per_label"][3] == 1.0 and result["label_accuracy_per_label"][5] == 0.5
    assert result["label_accuracy_per_label"][0] is None


def test_a_model_that_draws_the_requested_digit_scores_high(clips):
    faithful = ClipModel(clips)
    result = evaluate(faithful, "moving-digits", "label-accuracy", n=10 * CLIPS_PER_DIGIT, batch_size=2)
    assert result["scores"]["label_accuracy"] >= 0.9
    assert result["real_scores"]["label_accuracy"] >= 0.9  # real clips with their labels
    assert result["protocol"]["label_accuracy"]["clips_per_label"] == CLIPS_PER_DIGIT
    # after the probe batch that fixes the resolution, every digit in turn: [0, 0], [0], [1, 1], [1], ...
    assert faithful.calls[1:] == [[d] * k for d in range(10) for k in (2, 1)]
    shifted = ClipModel(clips, draw=lambda d: d + 1)  # always the next digit
    assert evaluate(shifted, "moving-digits", "label-accuracy", n=30)["scores"]["label_accuracy"] <= 0.1


def test_without_real_data_only_the_generated_score(clips):
    result = evaluate(ClipModel(clips), None, "label-accuracy", n=10)
    assert "label_accuracy" in result["scores"] and "label_accuracy" not in result["real_scores"]


def test_unconditional_models_and_tensors_are_refused(clips, capsys):
    tgan = vganzoo.create("tgan", resolution=32, channels=1, width=0.125)
    with pytest.raises(ValueError, match="class-conditional model; tgan is unconditional"):
        evaluate(tgan, "moving-digits", "label-accuracy", n=10)
    with pytest.raises(ValueError, match="num_classes=3"):
        evaluate(ClipModel(clips, num_classes=3), "moving-digits", "label-accuracy", n=10)
    with pytest.raises(ValueError, match="not a tensor"):
        evaluate(torch.zeros(10, 1, 16, 32, 32), "moving-digits", "label-accuracy", n=10)
    code = main(
        ["eval", "tgan", "--random-weights", "--metric", "label-accuracy", "--n", "10", "--no-progress"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "unconditional" in err
