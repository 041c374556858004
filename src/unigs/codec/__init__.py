"""Colormap codec: palette Ψ, progressive dichotomy Φ, coarse masks Ω (paper §3.2, supp. Alg. 1)."""
