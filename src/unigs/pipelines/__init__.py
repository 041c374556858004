"""Diffusers-style pipelines, one per task, on one shared denoising core."""
