"""The README's python blocks run as written: all of them, in order, in one fresh interpreter."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_has_python_blocks():
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    assert any("OIPEngine" in b for b in blocks) and any("wrap_objective" in b for b in blocks)


def test_readme_python_blocks_run_in_order(tmp_path):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    script = "\n\n".join(f"# --- README block {i}\n{b}" for i, b in enumerate(blocks))
    script += "\nprint('README blocks ran:', len(%r))\n" % (blocks,)
    path = tmp_path / "readme_blocks.py"
    path.write_text(script, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"a README block failed:\n{proc.stderr[-3000:]}"
    assert f"README blocks ran: {len(blocks)}" in proc.stdout
