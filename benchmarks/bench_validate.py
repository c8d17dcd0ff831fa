"""Throughput of the finite-network backends (network-layers per second) and the paper-size
validation time.  Prints figures; asserts nothing.

* `shaped Transformer block` at n = 256, m = 8: real-weight torch modules vs the exact-in-law
  sampler, on CPU (float64) and, when CUDA is available, on GPU (float64 and float32);
* the paper-size validation (n = 200, d = 150, 2000 networks, m = 2, power search) with
  the exact backend — target under 60 s per variant on a 2-core CPU.

Run:  .venv/bin/python benchmarks/bench_validate.py [--skip-paper]
"""
import argparse
import time

import numpy as np
import torch

from covsde.derive import derive
from covsde.derive.variants import build
from covsde.validate.networks import throughput
from covsde.validate.validation import validate

G8 = {"gamma": "0.35355339", "tau0": "1"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-paper", action="store_true")
    args = ap.parse_args()
    m, n = 8, 256
    V = np.full((m, m), 0.2) + 0.8 * np.eye(m)
    blk, _ = build("transformer", G8)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, devices {devices}")
    print(f"{'backend':<8} {'device':<6} {'dtype':<8} {'network-layers/s':>17}  (batch: CPU 16/256, GPU 1024/8192 networks)")
    for dev in devices:
        for dtype in ([torch.float64] if dev == "cpu" else [torch.float64, torch.float32]):
            sizes = (("torch", 16, 4), ("exact", 256, 8)) if dev == "cpu" else (("torch", 1024, 8), ("exact", 8192, 16))
            for backend, samples, depth in sizes:
                throughput(blk, V, n, 1, 4, backend, device=dev, dtype=dtype)  # warm-up
                tp = throughput(blk, V, n, depth, samples, backend, device=dev, dtype=dtype)
                print(f"{backend:<8} {dev:<6} {str(dtype).split('.')[-1]:<8} {tp:>17.0f}")
    if args.skip_paper:
        return
    V0 = np.array([[1.0, 0.2], [0.2, 1.0]])
    print("\npaper-size validation (n=200, d=150, 2000 networks, T=0.75, exact backend, power search):")
    for var in ("mlp", "resnet", "attention", "transformer"):
        s = {} if var == "mlp" else ({"gamma": G8["gamma"]} if var == "resnet" else G8)
        blk, params = build(var, s)
        d = derive(blk, 2)
        t0 = time.perf_counter()
        rep, _ = validate(blk, d, V0, 0.75, [200], samples=2000, seed=0, variant=var, params=params)
        print(f"  {var:<12} {time.perf_counter() - t0:6.1f} s   verdict {rep['verdict']}, power δ drift "
              f"{rep['power']['drift']}, diffusion {rep['power']['diffusion']}")


if __name__ == "__main__":
    main()
