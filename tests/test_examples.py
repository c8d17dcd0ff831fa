"""The scripts in examples/ run (at small sizes) and report what they claim."""
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script, *args, cwd=None):
    r = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, cwd=cwd)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_custom_block_example():
    out = run("custom_block.py", "--samples", "8000")
    assert "regime: sde" in out and "diffusion = Σ_lin: True" in out
    assert "drift agrees" in out and "diffusion agrees" in out


def test_width_sweep_example(tmp_path):
    out = run("width_sweep.py", "--widths", "16,32", "--samples", "150", "--onestep-samples", "2000", "--workers", "1",
              "--out", str(tmp_path / "s"), cwd=tmp_path)
    assert "verdict pass" in out and (tmp_path / "s" / "discrepancy.png").exists()


def test_export_torchsde_example():
    out = run("export_torchsde.py", "--paths", "1000")
    assert "paths left the positive-definite cone" in out and "torchsde: median ρ_T" in out
    assert float(out.split("KS p = ")[1]) > 0.001
