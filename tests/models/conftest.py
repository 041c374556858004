"""Fixtures for the model tests: tiny seeded components (``tests/tiny_models.py``) and a network guard."""

from __future__ import annotations

import socket

import pytest
from tiny_models import tiny_components, tiny_sd_inpaint_components, write_sd_folder


@pytest.fixture
def tiny():
    """Fresh tiny UniGS components (13/8 UNet with 4 tasks, ×4 VAE, 32-d BERT, DDIM); ~0.2 s to build."""
    return tiny_components(seed=0)


@pytest.fixture
def tiny_sd():
    """Fresh tiny SD-inpainting-style components (9/4 UNet, no task embedding)."""
    return tiny_sd_inpaint_components(seed=0)


@pytest.fixture
def sd_folder(tmp_path, tiny_sd):
    """A tiny SD-inpainting diffusers folder on disk (model_index.json, unet/ vae/ text_encoder/ ...)."""
    return write_sd_folder(tiny_sd, tmp_path / "sd-inpaint")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test: loading must be purely local."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: socket{args}")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
