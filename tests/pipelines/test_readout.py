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


def _call(pipe, cls, image, coarse, **kwargs):
    args = (image,) if cls is UniGSEntityPipeline else ("ball", image, coarse)
    return pipe(*args, num_inference_steps=1, output_type="np", generator=torch.Generator().manual_seed(0),
                **kwargs)


@pytest.mark.parametrize("cls", [UniGSEntityPipeline, UniGSReferringPipeline])
def test_model_colormaps_are_read_with_the_pipelines_readout(make_pipe, scene, monkeypatch, cls):
    image, coarse, _ = scene
    calls = _record_decode(monkeypatch)
    _call(make_pipe(cls), cls, image, coarse)  # the shipped READOUT
    assert calls and all(c["delta"] == cls.readout.get("delta", 10.0) for c in calls)
    calls.clear()
    pipe = make_pipe(type("Custom", (cls,), {"readout": {"far_factor": 7.0, "delta": 30.0}}))
    _call(pipe, cls, image, coarse)
    assert calls and all(c["far_factor"] == 7.0 and c["delta"] == 30.0 for c in calls)
    assert all(c["keep_background"] == (cls is UniGSEntityPipeline) for c in calls)
    calls.clear()
    _call(pipe, cls, image, coarse, delta=12.0)  # an explicit δ overrides the read-out's
    assert calls and all(c["far_factor"] == 7.0 and c["delta"] == 12.0 for c in calls)


def test_given_colormaps_keep_the_codecs_settings(make_pipe, scene, monkeypatch):
    """Synthesis's pinned colormap is the user's exact map: the model read-out does not apply to it."""
    image, _, masks = scene
    from unigs.codec import palette

    calls = _record_decode(monkeypatch)
    pipe = make_pipe(type("Custom", (UniGSSynthesisPipeline,), {"readout": {"far_factor": 7.0}}))
    pipe("ball", palette.encode(masks), num_inference_steps=1, output_type="np",
         generator=torch.Generator().manual_seed(0))
    assert calls and all("far_factor" not in c for c in calls)


def test_readout_may_not_set_keep_background():
    with pytest.raises(TypeError, match="keep_background"):
        type("Bad", (UniGSEntityPipeline,), {"readout": {"keep_background": False}})
    assert np.isfinite(UniGSEntityPipeline.readout.get("delta", 10.0))
