"""False-alarm rate of the validation's terminal-law test over 50 seeds at a small size.

Networks (exact backend) of width n = 64, depth 16 (T = 0.25), 300 samples each, against SDE
paths; the law test (KS per feature + energy, Holm) at α = 0.05.  Reports the rejection rate with a
95 % binomial interval, and, as an exact-null reference, the same test on two independent SDE
samples.  With ``--full``, the whole validation verdict instead (law test + one-step moment test at
n = 512 with 10 000 layers, each at α/2), i.e. the false-alarm rate of ``covsde validate`` itself.
Asserts nothing.

Run:  .venv/bin/python benchmarks/false_alarm.py [--seeds 50] [--variant attention] [--full]
"""
import argparse

import numpy as np
from scipy import stats as st

from covsde.derive import derive
from covsde.derive.variants import build
from covsde.numerics import simulate
from covsde.validate.networks import run_networks
from covsde.validate.stats import law_test


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--variant", default="attention")
    ap.add_argument("--full", action="store_true", help="the whole validation verdict (law + one-step)")
    a = ap.parse_args()
    s = {"gamma": "0.35355339", "tau0": "1"} if a.variant in ("attention", "transformer") else {}
    if a.variant == "resnet":
        s = {"gamma": "0.35355339"}
    blk, _ = build(a.variant, s)
    d = derive(blk, 2)
    V0 = np.array([[1.0, 0.2], [0.2, 1.0]])
    alpha, N, n, T = 0.05, 300, 64, 0.25
    rej_net = rej_sde = 0
    if a.full:
        from covsde.validate.validation import validate

        rej = {"law": 0, "onestep": 0, "verdict": 0}
        for k in range(a.seeds):
            rep, _ = validate(blk, d, V0, T, [n], samples=N, seed=k, alpha=alpha, power=False, onestep_samples=10000)
            rej["law"] += rep["tests"][str(n)]["reject"]
            rej["onestep"] += not rep["onestep"]["ok"]
            rej["verdict"] += rep["verdict"] == "fail"
        for label, r in rej.items():
            lo, hi = st.binomtest(r, a.seeds).proportion_ci(0.95)
            print(f"{a.variant} full validation, {label} (each part at α/2, verdict at α = {alpha}): "
                  f"{r}/{a.seeds} rejected (95% CI {lo:.3f}–{hi:.3f})")
        return
    for k in range(a.seeds):
        sde = simulate(d, V0, T, dt=0.005, paths=4 * N, seed=1000 + k, progress=False).V[-1]
        nets, _ = run_networks(blk, V0, n, int(T * n), N, seed=k)
        rej_net += law_test(nets[:, -1], sde, alpha=alpha, seed=k, permutations=99)["reject"]
        sde2 = simulate(d, V0, T, dt=0.005, paths=N, seed=5000 + k, progress=False).V[-1]
        rej_sde += law_test(sde2, sde, alpha=alpha, seed=k, permutations=99)["reject"]
    for label, r in (("networks vs SDE", rej_net), ("SDE vs SDE (exact null)", rej_sde)):
        lo, hi = st.binomtest(r, a.seeds).proportion_ci(0.95)
        p = st.binomtest(r, a.seeds, alpha, alternative="greater").pvalue
        print(f"{a.variant} {label}: {r}/{a.seeds} rejected at α = {alpha} → rate {r / a.seeds:.3f} "
              f"(95% CI {lo:.3f}–{hi:.3f}; P(≥ this | rate = α) = {p:.2f})")


if __name__ == "__main__":
    main()
