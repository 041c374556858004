"""UniGS: unified representation for image generation and segmentation."""

__version__ = "0.1.0"
