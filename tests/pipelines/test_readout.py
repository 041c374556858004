"""`UniGSPipeline.readout`: Φ's settings for the colormaps a model predicts (issue 16)."""

import numpy as np
import pytest
import torch

import unigs.codec.dichotomy as dichotomy
from unigs.pipelines import UniGSEntityPipeline, UniGSReferringPipeline, UniGSSynthesisPipeline


def _record_decode(monkeypatch):
    calls = []
    real = dichotomy.decode

    def decode(cmap, **kwargs):
        calls.append(kwargs)
        return real(cmap, **kwargs)

    monkeypatch.setattr(dichotomy, "decode", decode)
    return calls


@pytest.mark.parametrize("cls", [UniGSEntityPipeline, UniGSReferringPipeline])
def test_model_colormaps_are_read_with_the_pipelines_readout(make_pipe, scene, monkeypatch, cls):
    image, coarse, _ = scene
    calls = _record_decode(monkeypatch)
    pipe = make_pipe(type("Custom", (cls,), {"readout": {"far_factor": 7.0}}))
    args = (image,) if cls is UniGSEntityPipeline else ("ball", image, coarse)
    pipe(*args, num_inference_steps=1, output_type="np", generator=torch.Generator().manual_seed(0))
    assert calls and all(c["far_factor"] == 7.0 and c["delta"] == 10.0 for c in calls)
    assert all(c["keep_background"] == (cls is UniGSEntityPipeline) for c in calls)


def test_given_colormaps_keep_the_codecs_settings(make_pipe, scene, monkeypatch):
    """Synthesis's pinned colormap is the user's exact map: the model read-out does not apply to it."""
    image, _, masks = scene
    from unigs.codec import palette

    calls = _record_decode(monkeypatch)
    pipe = make_pipe(type("Custom", (UniGSSynthesisPipeline,), {"readout": {"far_factor": 7.0}}))
    pipe("ball", palette.encode(masks), num_inference_steps=1, output_type="np",
         generator=torch.Generator().manual_seed(0))
    assert calls and all("far_factor" not in c for c in calls)


def test_readout_may_not_set_delta():
    with pytest.raises(TypeError, match="delta"):
        type("Bad", (UniGSEntityPipeline,), {"readout": {"delta": 5.0}})
    assert np.isfinite(UniGSEntityPipeline.readout.get("far_factor", 4.0))
