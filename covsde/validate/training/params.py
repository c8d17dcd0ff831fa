r"""Parameterisations for training: init scales, forward multipliers and per-group learning rates.

Every weight is stored i.i.d. N(0, 1) and every layer carries an explicit multiplier (covsde's form:
a hidden projection is x W/√fan_in, so the blocks' initialisation is the one the derivation assumes).
A parameterisation of the abc-family of Yang & Hu ("Tensor Programs IV", 2021), W = n^(−a) w,
w ~ N(0, n^(−2b)), learning rate η n^(−c), is rewritten in this form by the symmetry
(a, b, c) → (a + b, 0, c − 2b) for SGD and (a + b, 0, c − b) for Adam (the same function at every step).
n is the width, L the depth (number of blocks), η the base learning rate of the command line; the three
parameter groups are the input map (fan-in d or a one-hot token: O(1)), the blocks' weights (fan-in
∝ n) and the readout (fan-out O(1)).

==========  ================  ===========  ==================  ===============  ======================
name        readout c_out     logits       branch γ, skip λ    SGD rate         Adam rate
                                                               in / hidden /    in / hidden / out
                                                               out
==========  ================  ===========  ==================  ===============  ======================
sp          n^(−1/2)          the block's  β0 = 1/√2,          η / ηn / ηn      η / η√n / η√n
                                           λ = √(1 − γ²)
mup         n^(−1)            q·k/n        β0 = 1/√2,          ηn / ηn / ηn     η / η/√n / η
                              (α_A = 1)    λ = √(1 − γ²)
depth-mup   n^(−1)            q·k/n        β0·(L/L0)^(−1/2),   ηn for all       η / η/√n·(L/L0)^(−1/2)
                                           λ = 1                                / η
bordelon    n^(−1), output    q·k/n^(α_A)  β0·(L/L0)^(−α_L),   ηγ0²n ·          ηγ0 / ηγ0/√n·
            (f − f0)/γ0                    λ = 1               [1 / (L/L0)^     (L/L0)^(α_L − 1) / ηγ0
                                                               (2α_L−1) / 1]
==========  ================  ===========  ==================  ===============  ======================

Sources.  ``sp``: the standard parameterisation (PyTorch's init variance 1/fan_in, one learning rate for
every weight; in abc form a = 0, b = 1/2, c = 0) — Yang & Hu, "Tensor Programs IV" (2021), Table 1.
``mup``: the maximal-update parameterisation, Yang & Hu, "Tensor Programs IV" (a = −1/2, 0, 1/2 for input,
hidden, output, b = 1/2, c = 0 under SGD), and for Adam Yang et al., "Tensor Programs V: Tuning large
neural networks via zero-shot hyperparameter transfer" (2022), Table 3 (hidden rate η/fan_in, readout
multiplier 1/fan_in); attention logits q·k/d_head as in Tensor Programs V.  ``depth-mup``: branches
scaled by L^(−1/2) with the SGD rate constant in depth — Yang, Yu, Zhu & Hayou, "Tensor Programs VI:
Feature learning in infinite-depth neural networks" (2023) and Bordelon, Noci, Li, Hanin & Pehlevan,
"Depthwise hyperparameter transfer in residual networks" (2023); the Adam rate of the blocks (L/L0)^(−1/2)
is Tensor Programs VI's.  ``bordelon``: Bordelon, Chaudhry & Pehlevan, "Infinite limits of multi-head
transformer dynamics" (2024): logits q·k/N^(α_A) (N the key/query width, here n), branches
β0·(L/L0)^(−α_L), readout divided by N·H (= n), output (f − f0)/γ0, SGD rate η0·γ0²·N·H·(L/L0)^(2α_L−1),
Adam η0/√(N·H).  Two choices are this package's: their code applies one SGD rate to every parameter,
here the depth factor goes to the blocks' weights only (the input map's and readout's gradients carry
no branch multiplier); and the Adam rates carry a factor γ0 (Adam's step does not scale with the
gradient, so this keeps the output's change per step independent of γ0), with depth factor
(L/L0)^(α_L − 1), which is their η0/√(NH) at α_L = 1.

A user's ``gamma``/``lam``/``e`` set on the block win over the parameterisation's.  The skip λ = √(1 − γ²)
of ``sp``/``mup`` is covsde's variance-preserving residual; λ = 1 (the sources' h + γF(h)) for the others.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ...common import checks
from ...common.errors import CovsdeInputError

NAMES = ("sp", "mup", "depth-mup", "bordelon")
OPTIMIZERS = ("sgd", "adam")
GROUPS = ("input", "hidden", "output")


@dataclass(frozen=True)
class Parameterisation:
    """One row of the module's table; ``alpha_A`` None: the block's own logit temperature."""

    name: str
    readout: float  # c_out = n^(−readout)
    alpha_A: float | None
    alpha_L: float
    beta0: float
    gamma0: float = 1.0
    L0: int = 1
    centre: bool = False

    def c_out(self, n):
        return float(n) ** (-self.readout)

    def branch(self, L):
        """(γ, λ) of the residual branches in a stack of L blocks (λ None: covsde's √(1 − γ²))."""
        g = self.beta0 * (L / self.L0) ** (-self.alpha_L)
        return g, (None if self.name in ("sp", "mup") else 1.0)

    def learning_rates(self, optimizer, eta, n, L):
        """{group: learning rate} for base rate ``eta`` at width n and depth L (the module's table)."""
        optimizer = checks.choice("optimizer", optimizer, OPTIMIZERS)
        depth = L / self.L0
        if self.name == "sp":
            r = (1.0, n, n) if optimizer == "sgd" else (1.0, math.sqrt(n), math.sqrt(n))
        elif self.name == "mup":
            r = (n, n, n) if optimizer == "sgd" else (1.0, n ** -0.5, 1.0)
        elif optimizer == "sgd":
            g2n = self.gamma0 ** 2 * n
            r = (g2n, g2n * depth ** (2 * self.alpha_L - 1), g2n)
        else:
            g = self.gamma0
            r = (g, g * n ** -0.5 * depth ** (self.alpha_L - 1), g)
        return {k: eta * v for k, v in zip(GROUPS, r)}


def make(name, *, alpha_A=None, alpha_L=None, beta0=None, gamma0=None, L0=None) -> Parameterisation:
    """The parameterisation ``name`` (one of NAMES); the four numbers apply to ``bordelon`` (defaults
    α_A = 1, α_L = 1/2, β0 = 1, γ0 = 1, L0 = 1), and β0, L0 to ``depth-mup`` too."""
    if name not in NAMES:
        raise CovsdeInputError(f"unknown parameterisation {name!r} (known: {', '.join(NAMES)})")
    given = {k: v for k, v in (("alpha_A", alpha_A), ("alpha_L", alpha_L), ("beta0", beta0), ("gamma0", gamma0),
                               ("L0", L0)) if v is not None}
    allowed = {"bordelon": set(given), "depth-mup": {"beta0", "L0"}}.get(name, set())
    extra = sorted(set(given) - allowed)
    if extra:
        raise CovsdeInputError(f"{', '.join(extra)} do not apply to the parameterisation {name!r}")
    L0v = checks.integer("L0", given.get("L0", 1), 1)
    b0 = checks.real("beta0", given.get("beta0", 1.0), positive=True)
    if name == "sp":
        return Parameterisation("sp", 0.5, None, 0.0, 1 / math.sqrt(2))
    if name == "mup":
        return Parameterisation("mup", 1.0, 1.0, 0.0, 1 / math.sqrt(2))
    if name == "depth-mup":
        return Parameterisation("depth-mup", 1.0, 1.0, 0.5, b0, L0=L0v)
    aA = checks.real("alpha_A", given.get("alpha_A", 1.0))
    if aA < 0.5:
        raise CovsdeInputError(f"alpha_A = {aA:g}: logits q·k/n^alpha_A need alpha_A ≥ 1/2 here")
    aL = checks.real("alpha_L", given.get("alpha_L", 0.5), nonnegative=True)
    g0 = checks.real("gamma0", given.get("gamma0", 1.0), positive=True)
    return Parameterisation("bordelon", 1.0, aA, aL, b0, g0, L0v, centre=True)
