"""Every Python code block of README.md runs as written (from the repository root, as a reader would)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(encoding="utf-8"), re.S)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, monkeypatch, capsys):
    from unigs.models.loading import default_model_path

    code = BLOCKS[index]
    if "default_model_path()" in code and not default_model_path().exists():
        pytest.skip("the bundled default model is not in this checkout")
    monkeypatch.chdir(REPO_ROOT)
    exec(compile(code, f"README.md python block {index + 1}", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out
    assert printed.strip(), "a README example should show its result"
    if "UniGSReferringPipeline" in code:
        assert "mask(s)" in printed
    if "UniGSEntityPipeline" in code:
        assert "(1, 150, 192, 3)" in printed and ", 150, 192)" in printed
