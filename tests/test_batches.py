"""Loss weights and the pre-encoded example pool (unigs.batches)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unigs.batches import BALANCE_AREA, ExamplePool, LossWeighting, entity_weight_map, loss_weights
from unigs.data.tasks import sample_example


def _examples():
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    masks = np.zeros((3, 32, 32), bool)
    masks[0, 4:8, 4:8] = True  # small thing: 1.6 % of the image
    masks[1, 16:, :] = True  # stuff band: half the image
    masks[2, 4:12, 20:28] = True
    masks[1] &= ~masks[0]
    names = ["ball", "grass", "box"]
    return [sample_example(task, image, masks, names, np.random.default_rng(i), ["star"])
            for i, task in enumerate(["inpainting", "synthesis", "referring", "entity"])]


def test_entity_weight_map_balances_by_area():
    masks = np.zeros((2, 20, 20), bool)
    masks[0, :2, :2] = True  # 1 % of the image
    masks[1, 10:, :] = True  # 50 %
    w = entity_weight_map(masks, max_weight=4.0)
    assert w[0, 0] == 4.0  # sqrt(0.25 / 0.01) = 5, clipped to 4
    assert w[15, 15] == 1.0 and w[5, 5] == 1.0  # large entity and background keep 1
    assert np.all(entity_weight_map(masks, 1.0) == 1.0)
    masks[0, :5, :5] = True  # 6.25 % → sqrt(4) = 2
    assert entity_weight_map(masks, 4.0)[0, 0] == pytest.approx(np.sqrt(BALANCE_AREA / 0.0625))


def test_loss_weights_follow_table2_and_the_referring_region():
    examples = _examples()
    uniform = loss_weights(examples, (8, 8), LossWeighting())
    assert torch.equal(uniform, torch.ones(4, 2, 8, 8))
    w = loss_weights(examples, (8, 8), LossWeighting(0.0, 0.1, 4.0))
    assert w.shape == (4, 2, 8, 8)
    assert torch.all(w[0] > 0)  # inpainting: both halves generated
    assert torch.all(w[1, 1] == 0) and torch.all(w[1, 0] == 1)  # synthesis: colormap pinned
    assert torch.all(w[2, 0] == 0) and torch.all(w[3, 0] == 0)  # referring / entity: image pinned
    region = torch.nn.functional.adaptive_max_pool2d(
        torch.from_numpy(examples[2].coarse_mask.astype(np.float32))[None, None], (8, 8))[0, 0]
    grown = torch.nn.functional.max_pool2d(region[None, None], 3, 1, 1)[0, 0] > 0
    assert torch.allclose(w[2, 1][~grown], torch.tensor(0.1))
    assert float(w[3, 1].max()) > 1.0  # entity: the small ball counts more than the sky


def test_pool_batches_equal_the_encoded_examples(tmp_path):
    from tiny_models import tiny_components

    from unigs.batches import PromptCache, encode_examples

    comps = tiny_components()
    examples = _examples()
    weighting = LossWeighting(0.0, 0.1, 4.0)
    pool = ExamplePool.build(lambda a, b: examples[a:b], 4, comps, True, weighting, {"k": 1}, chunk=3,
                             progress=False)
    pool.save(tmp_path / "pool.pt")
    again = ExamplePool.load(tmp_path / "pool.pt", {"k": 1})
    assert again is not None and ExamplePool.load(tmp_path / "pool.pt", {"k": 2}) is None
    direct = encode_examples(comps, examples, PromptCache(comps.tokenizer, comps.text_encoder, "cpu"), True,
                             weighting)
    got = again.batch(np.array([3, 0]), np.array([False, True]), True, "cpu")
    for name in ("z_image", "z_colormap", "z_control", "weights", "mask"):
        assert torch.allclose(got[name], direct[name][[3, 0]], atol=2e-2), name
    assert torch.allclose(got["text"][0], direct["text"][3], atol=1e-2)
    empty = PromptCache(comps.tokenizer, comps.text_encoder, "cpu")([""])[0]
    assert torch.allclose(got["text"][1], empty, atol=1e-2)  # the dropped prompt is ""
    assert got["tasks"] == ["entity", "inpainting"] and got["task_ids"].tolist() == [3, 0]
