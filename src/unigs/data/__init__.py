"""Datasets: COCO-format entities, procedural scenes, task samplers."""
