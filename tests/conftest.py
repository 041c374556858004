"""Shared pytest fixtures for the unigs test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def _coco_mini_path() -> Path | None:
    """`<repo>/../shared/data/coco-mini`, else the folder named by $UNIGS_COCO_MINI, else None."""
    candidates = [REPO_ROOT.parent / "shared" / "data" / "coco-mini"]
    if os.environ.get("UNIGS_COCO_MINI"):
        candidates.append(Path(os.environ["UNIGS_COCO_MINI"]))
    for path in candidates:
        if (path / "annotations").is_dir():
            return path.resolve()
    return None


@pytest.fixture(scope="session")
def coco_mini() -> Path:
    """Path to the coco-mini data set (COCO format: annotations/, train2017/, val2017/).

    Skips the test when the data is absent: neither `<repo>/../shared/data/coco-mini` nor the folder in
    the environment variable UNIGS_COCO_MINI holds an `annotations/` directory.
    """
    path = _coco_mini_path()
    if path is None:
        pytest.skip(
            "coco-mini not found: expected <repo>/../shared/data/coco-mini, or set UNIGS_COCO_MINI "
            "to a folder with annotations/ and val2017/"
        )
    return path


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Run the suite with one intra-op thread: the test models are tiny, and on a shared 2-core machine two
    threads per process made the tiny-model evaluation ~10x slower (5 s vs 56 s, measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------ tiny training runs (unigs.train)
# (the config dict of those runs is tests/training_config.py: a plain module, so both test files import it)
@pytest.fixture(scope="session")
def tiny_parts(tmp_path_factory) -> dict[str, str]:
    """Folders of the tiny seeded VAE (×4) and text encoder (32-d BERT, MiniLM tokenizer)."""
    from tiny_models import tiny_components

    root = tmp_path_factory.mktemp("tiny")
    c = tiny_components()
    c.vae.save_pretrained(root / "vae")
    c.text_encoder.save_pretrained(root / "text")
    c.tokenizer.save_pretrained(root / "text")
    return {"vae": str(root / "vae"), "text_encoder": str(root / "text")}
