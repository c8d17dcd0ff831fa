"""Standard softmax attention at O(1) logits: the kernel map K_att(V), evaluated numerically.

One head with logits of order one (temperature τ0·√n_k) maps the token covariance V to

    K_att(V)_ab = E_S[(softmax_M(S) V softmax_M(S)ᵀ)_ab],   vec S ~ N(0, V⊗V/τ0²),

i.e. Cov(S_ai, S_bj) = V_ab·V_ij/τ0² (S = L Z Lᵀ/τ0, L Lᵀ = V, Z i.i.d. N(0, 1)); with a 0/1 mask M
row a's softmax runs over its allowed tokens only.  There is no closed form; :func:`k_att` evaluates it
deterministically (a fixed rule or a fixed, seeded bank: the same V gives the same bits in every run)
with a measured error.

Reduction.  Each row's softmax is shift invariant, so only the centred logits S P matter
(P = I − 11ᵀ/m): rows a, b are jointly Gaussian with Cov(P s_a, P s_b) = C_ab ⊗ Ṽ, C = [[V_aa, V_ab],
[V_ab, V_bb]]/τ0², Ṽ = P V P = B Bᵀ (B: m×r, r = rank Ṽ ≤ m − 1, from an eigen factor, so a singular
V such as v·11ᵀ is fine).  Writing R for the 2×2 factor of C (R Rᵀ = C),

    P s_a = R_00·B g₁,   P s_b = (R_10 g₁ + R_11 g₂)·B,   g₁, g₂ ~ N(0, I_r),

a diagonal entry is an r-dimensional integral and an off-diagonal one 2r-dimensional, of
f = p_aᵀ V p_b (|f| ≤ max|V|).  For m = 2 this is the classical reduction (𝟙 = (1, 1), e = (1, −1),
t = sigmoid − ½): K_ab = 𝟙ᵀV𝟙/4 + eᵀVe·E[t(δ_a) t(δ_b)], (δ_a, δ_b) ~ N(0, eᵀVe·V/τ0²).

Rules (``method`` of the result), chosen from r and m; the measured errors are max-abs differences
from the independent test reference (tests/derive/reference_kernels.py), the times one evaluation's
CPU time on one core (benchmarks/bench_attention_kernel.py, which prints the table):

* ``"exact"`` — r = 0 (e.g. V = v·11ᵀ, or m = 1): every row is its uniform u, K = U V Uᵀ, error 0;
* ``"trapezoid"`` — r = 1, m ≤ PAIR_MAX_M (every m = 2): the tensor trapezoid rule in (g₁, g₂) on
  |g| ≤ G = √2·erfc⁻¹(10⁻³·tol) (within [4, 9]).  An integrand analytic in the strip |Im g| < d has a
  step-h error of about e^(d²/2 − 2πd/h); the softmax's singularities lie at d = π/σ, σ the rate of the
  logit differences per unit g, so h is the largest step with d²/2 − 2πd/h ≤ −L, L = ln(1/tol) + 7
  (d ≤ √(2L)).  4⌈G/h⌉ + 1 nodes per dimension, at most ``TRAP_MAX_NODES`` (= 2049: logit scales
  beyond ~50, e.g. V ~ 100 at τ0 = 1, then report an estimate above tol, ~1e-5, in about a second);
  the result is the step-h/2 sum, the estimate |Q_h − Q_h/2| + 2·erfc(G/√2)·(1 + max|V|)
  (conservative: the step-h/2 error is about its square).
  m = 2, 18 random V, τ0 ∈ {0.5, 1, 2}, tol 1e-9: 1.7e3 to 1.3e5 nodes per matrix, estimate ≤ 2e-10,
  error ≤ 3e-12 (against a rule of tol 1e-15 and against the reference), under 0.01 s;
* ``"rqmc-pairs"`` — r ≥ 2, m ≤ PAIR_MAX_M (= 8): every entry by randomised quasi-Monte Carlo in its
  reduced coordinates: ``REPLICATES`` (= 8) scrambled Sobol' sequences with fixed seeds (coordinates
  (g₁, g₂) interleaved column by column, columns by decreasing eigenvalue of Ṽ), 2^12 points per
  replicate, doubled until three standard errors over the replicates are ≤ tol or at 2^17; no
  antithetic images (reflecting a scrambled net spoils it: measured 2× worse).  Off the diagonal
  a control variate: g = q_aᵀ p_b^⊥ (q = V p, p_b^⊥ row b's weights at √C_bb·B g₂ alone, independent
  of row a), whose mean E[q_a]·E[p_b] comes from the diagonal's r-dimensional bank; f − β(g − E g),
  β = cov(f, g)/var(g), has a variance ∝ ρ_ab² for weakly correlated rows.  Measured, tol 1e-5: m = 3,
  V = A Aᵀ/3 + 0.4 I, τ0 ∈ {0.5, 1, 2}: estimate 6e-6 to 9e-6, error ≤ 5e-6, 0.05 to 1.8 s; m = 4
  correlation matrix, τ0 = 1: estimate 8.6e-6, error 3e-7, 0.2 s; m = 4, V = A Aᵀ/4 + 0.4 I (V_aa up
  to 2.3): τ0 = 1: estimate 1.4e-5 (tol not met at 2^17), error 6e-6, 2 s; τ0 = 0.5: estimate 7e-5,
  error 7e-5 (logit standard deviations near 4: a nearly discontinuous, peaked softmax);
* ``"mc-rows"`` — m > PAIR_MAX_M: row draws, in blocks of n = min(4096, max(256, 2^17/m)) draws
  Y = B g (g from a fixed, seeded generator, float32), ``REPLICATES`` seeded banks.  Diagonal:
  K_aa = E[q·p] at p = softmax(c_a Y), q = V p, c_a = √V_aa/τ0; rows with one mask row share the draws,
  their quantities being analytic in the scale c, evaluated at the distinct scales or at
  ``CHEB_NODES`` (9) Chebyshev–Lobatto nodes and interpolated (the 5-node interpolant, whose nodes are
  among them, estimates the interpolation error); a Stein control variate (:func:`_node_sums`) divides
  the standard deviation by 2–3 where the softmax is peaked; the row means E[p] from g and −g.  Off
  the diagonal: row a's draws are Y rolled by a·⌊n/m⌋ (two rows' draws at one index are independent),
  K_ab = E[q_a·(p_b^c − p_b) − T1] + E[q_a]·E[p_b] + E[T1], p_b^c = softmax_b(c_b(ρ_ab Y_a +
  √(1 − ρ_ab²) Y_b)) (row b's law and the pair's correlation), T1 its first-order term in ρ_ab
  (:func:`_pair_sums`; the residual's variance is O(ρ⁴)), on the first n/min(16, m/4) indices.  The
  blocks double from one while three standard errors plus the interpolation estimate exceed tol, up
  to a work of ``MC_WORK``·budget (halved blocks when one block is more: a causal mask, whose rows
  share no draws).  Measured at τ0 = 1, tol 1e-3, budget 1 (CPU time of one core, single-threaded
  BLAS, on a shared, loaded machine: 0.9 to 1.7 s at m = 64 between runs): correlation matrices (unit
  diagonal, ρ ≈ 0.4) — m = 16: estimate 1.8e-4, error 2.3e-4 (the reference's standard error 5e-5),
  0.2–0.3 s; m = 64: estimate 1.3e-4, error 1.0e-4 (3e-5), 0.9–1.2 s; V = A Aᵀ/m + I/2 (unequal
  diagonal, weak correlations, a peaked softmax) — m = 16: estimate 8e-4, error 9.5e-4 (6.4e-4),
  1.3–1.6 s; m = 64: estimate 9.5e-4, error 1.2e-3 against 160 000 reference samples (4.2e-4),
  1.0–1.7 s (accuracy=4e-4, budget=4: estimate 6.3e-4, error 8e-4, 4× the time).  A causal mask is
  harder (the rows with few tokens): m = 16: estimate 3e-3 (1.3e-3 with budget = 4); m = 64,
  correlation matrix: 2.9e-3 at 1 s, 1.6e-3 with budget = 4 (errors 1.1e-3 and 8e-4, 5.5e-4).

Checks: :func:`k_identity` is the closed form E[S V Sᵀ] = V·Σ_ij V_ij²/τ0² of the identity mechanism
(``k_att(..., mechanism="identity")`` runs the same rules on it), and :func:`small_logit_terms` the
expansion K_att = U V Uᵀ + τ0⁻²·M(V) + O(τ0⁻⁴).

The error is a max-abs error estimate over the entries (``err``), measured by the rule itself (two
steps, or replicate scatter); ``converged`` says whether it met the tolerance asked for.  The same V,
tau0 and mask give the same bits in every run with the same NumPy, SciPy and BLAS.

Example::

    >>> import numpy as np
    >>> from covsde.derive.attention_kernel import k_att
    >>> r = k_att(np.array([[1.0, 0.3], [0.3, 0.8]]), tau0=1.0)
    >>> r.method, r.err < 1e-9
    ('trapezoid', True)
    >>> K, err = r                      # also unpacks as a pair
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import erfc, erfcinv, ndtri
from scipy.stats import qmc

from .errors import CovsdeInputError, ResourceLimitError
from .masks import make_mask

MAX_M = 256  # the largest m k_att accepts (its whole-matrix bank costs O(m³) per matrix)
PAIR_MAX_M = 8  # per-entry reduced integrals up to here, whole matrices beyond
REPLICATES = 8
SEED = 20240524  # the seed of every bank (fixed: the evaluation is a deterministic function of V)
MC_WORK = 5.1e9  # mc-rows: the largest work (rough operations, see _mc_work) at budget 1: about 1 s of one core
MAX_BYTES = 256 * 2**20  # the largest work array of one chunk
TRAP_MAX_NODES = 2049  # per dimension at most (logit scales σ beyond ~50: the estimate then exceeds tol)
TRAP_SLACK = 7.0  # e^7 ≈ 1e3: the prefactor of the trapezoid error (measured: estimates ≤ 2e-10 at tol 1e-9)
DEFAULT_ACCURACY = {2: 1e-9, 4: 1e-5}  # m ≤ key → tolerance; larger m: 1e-3


@dataclass(frozen=True)
class AttentionKernelValue:
    """K (m×m), err (max-abs error estimate over the entries), method, nodes (integrand evaluations),
    converged (err ≤ the tolerance asked for).  Unpacks as ``K, err = value``."""

    K: np.ndarray
    err: float
    method: str
    nodes: int
    converged: bool

    def __post_init__(self):
        object.__setattr__(self, "err", float(self.err))
        object.__setattr__(self, "nodes", int(self.nodes))
        object.__setattr__(self, "converged", bool(self.converged))

    def __iter__(self):
        yield self.K
        yield self.err


def default_accuracy(m: int) -> float:
    for bound, tol in sorted(DEFAULT_ACCURACY.items()):
        if m <= bound:
            return tol
    return 1e-3


# ----------------------------------------------------------------------------------------------- inputs

def check_v(V, name: str = "V") -> np.ndarray:
    """A finite, symmetric, positive semi-definite m×m float array (1 ≤ m ≤ MAX_M), symmetrised."""
    try:
        A = np.array(V, dtype=float)
    except (TypeError, ValueError, OverflowError, RecursionError):
        raise CovsdeInputError(f"{name} must be a square matrix of numbers, got {str(V)[:200]}") from None
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise CovsdeInputError(f"{name} must be a square matrix, got shape {A.shape}")
    m = A.shape[0]
    if m > MAX_M:
        raise ResourceLimitError(f"{name} is {m}×{m}: the attention kernel is evaluated for m ≤ {MAX_M}")
    if not np.all(np.isfinite(A)):
        i, j = np.argwhere(~np.isfinite(A))[0]
        raise CovsdeInputError(f"{name} has non-finite entries, e.g. {name}[{i}][{j}] = {A[i, j]}")
    scale = max(float(np.abs(A).max()), 1e-300)
    if np.abs(A - A.T).max() > 1e-10 * scale:
        i, j = np.unravel_index(np.argmax(np.abs(A - A.T)), A.shape)
        raise CovsdeInputError(f"{name} is not symmetric: {name}[{i}][{j}]={A[i, j]} but "
                               f"{name}[{j}][{i}]={A[j, i]}")
    A = 0.5 * (A + A.T)
    w = np.linalg.eigvalsh(A)
    if w[0] < -1e-10 * scale * m:
        raise CovsdeInputError(f"{name} is not positive semi-definite (smallest eigenvalue {w[0]:.3g})")
    return A


def check_tau0(tau0) -> float:
    try:
        t = float(tau0)
    except (TypeError, ValueError):
        raise CovsdeInputError(f"tau0 must be a number, got {tau0!r}") from None
    if isinstance(tau0, bool) or not math.isfinite(t) or t <= 0:
        raise CovsdeInputError(f"tau0 must be a finite number > 0, got tau0={tau0!r}")
    return t


def check_mask(mask, m: int):
    """None (every token) or an m×m bool array with a token in every row (covsde.derive.masks rules)."""
    try:
        spec = make_mask(mask)
        if spec is None:
            return None
        allowed = np.array(spec.allowed(m), dtype=bool)
    except CovsdeInputError as exc:
        raise CovsdeInputError(f"mask: {exc}") from None
    if allowed.all():
        return None
    return allowed


def uniform_rows(m: int, allowed) -> np.ndarray:
    """U: row a uniform over row a's allowed tokens (11ᵀ/m without a mask)."""
    if allowed is None:
        return np.full((m, m), 1.0 / m)
    return allowed / allowed.sum(axis=1, keepdims=True)


def psd_factor(A: np.ndarray, scale: float | None = None, rtol: float = 1e-12) -> np.ndarray:
    """F (m×r) with F Fᵀ = A, r the numerical rank (eigenvalues above rtol·m·scale, scale = max|A| unless
    given: P V P of a rank-collapsed V is zero up to rounding), columns in decreasing importance."""
    w, E = np.linalg.eigh(A)
    scale = float(np.abs(A).max()) if scale is None else scale
    keep = w > rtol * A.shape[0] * max(scale, 1e-300)
    if not keep.any():
        return np.zeros((A.shape[0], 0))
    return (E[:, keep] * np.sqrt(w[keep]))[:, ::-1]


# ------------------------------------------------------------------------------------- closed forms

def k_identity(V, tau0) -> np.ndarray:
    """E[S V Sᵀ] for the Gaussian logits S (softmax replaced by the identity): V_ab·Σ_ij V_ij²/τ0²."""
    V = check_v(V)
    tau0 = check_tau0(tau0)
    return V * float(np.sum(V * V)) / tau0**2


def small_logit_parts(V, mask=None):
    """(U, E1, E2): the pieces of the small-logit expansion (see :func:`small_logit_terms`), τ0² times
    E[δp₁ V δp₁ᵀ] (E1) and τ0² times E[δp₂] (E2, row a the mean second-order change of row a)."""
    V = check_v(V)
    m = V.shape[0]
    U = uniform_rows(m, check_mask(mask, m))
    d = np.diag(V)
    W = np.empty((m, m, m))
    E2 = np.empty((m, m))
    for a in range(m):
        u = U[a]
        W[a] = (np.diag(u) - np.outer(u, u)) @ V
        E2[a] = 0.5 * V[a, a] * u * (d - 2 * V @ u + (2 * u @ V @ u - u @ d))
    return U, V * np.einsum("aij,bji->ab", W, W), E2


def small_logit_terms(V, mask=None):
    """(K0, M) with K_att(V) = K0 + τ0⁻²·M(V) + O(τ0⁻⁴) as τ0 → ∞.

    The softmax of row a near its uniform u_a (over the allowed tokens) is
    p = u + δp₁ + δp₂ + O(s³), δp₁ = J s with J = dg(u) − u uᵀ, δp₂ = ½ H[s, s] (H the softmax's Hessian at
    u); the odd orders have mean zero, so K0 = U V Uᵀ (= J V J, J = 11ᵀ/m, without a mask) and

        M = τ0²·(E[δp₁ V δp₁ᵀ] + E[δp₂] V Uᵀ + U V E[δp₂]ᵀ),
        E[δp₁ V δp₁ᵀ]_ab = V_ab·tr(J_a V J_b V)/τ0²,
        E[δp₂]_a = V_aa/(2τ0²)·u_a ∘ (diag V − 2 V u_a + (2 u_aᵀ V u_a − u_aᵀ diag V) 1).

    Without a mask (Ṽ = PVP, ṽ = diag Ṽ, d = diag V): M = tr(Ṽ²)·V/m² + (d wᵀ + w dᵀ)/(2m), w = J V P ṽ.
    The shaped attention (A = I + softmax − J) has the same two pieces with V in the place of V Uᵀ: its
    drift is γ²/τ0²·(E1 + E2 V + V E2ᵀ) (:func:`small_logit_parts`), which the tests check against the
    symbolic derivation."""
    U, E1, E2 = small_logit_parts(V, mask)
    V = check_v(V)
    return U @ V @ U.T, E1 + E2 @ V @ U.T + U @ V @ E2.T


# ------------------------------------------------------------------------------------ the integrand

@dataclass
class _Law:
    """What every entry's integrand needs: V, the column factor B (Ṽ = B Bᵀ, or V itself for the identity
    mechanism), the rows' 2×2 factors, the mask and the uniform rows."""

    V: np.ndarray
    tau0: float
    B: np.ndarray
    allowed: np.ndarray | None
    U: np.ndarray
    softmax: bool

    def factor(self, a: int, b: int):
        """(R_00, R_10, R_11) with R Rᵀ = [[V_aa, V_ab], [V_ab, V_bb]]/τ0²."""
        V, t2 = self.V, self.tau0**2
        r00 = math.sqrt(max(V[a, a], 0.0) / t2)
        r10 = V[a, b] / t2 / r00 if r00 > 0 else 0.0
        r11 = math.sqrt(max(V[b, b] / t2 - r10 * r10, 0.0))
        return r00, r10, r11

    def rowmap(self, s: np.ndarray, a: int) -> np.ndarray:
        """Row a's attention weights at logits s (n×m): the masked softmax, or s itself (identity)."""
        if not self.softmax:
            return s
        if self.allowed is not None and not self.allowed[a].all():
            s = np.where(self.allowed[a], s, -np.inf)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def rows(self, s: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Attention weights of stacked logits s (k×m×n: the tokens on the middle axis, so that the
        softmax's reductions run over contiguous node vectors), s[i] being row rows[i]'s."""
        if not self.softmax:
            return s
        if self.allowed is not None:
            s = np.where(self.allowed[rows][:, :, None], s, -np.inf)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def values(self, Y1: np.ndarray, Y2, a: int, b: int) -> np.ndarray:
        """The integrand at the nodes: Y1 = g₁ Bᵀ, Y2 = g₂ Bᵀ (n×m; unused when a = b)."""
        r00, r10, r11 = self.factor(a, b)
        sa = r00 * Y1
        sb = sa if a == b else r10 * Y1 + r11 * Y2
        pa = self.rowmap(sa, a)
        pb = pa if a == b else self.rowmap(sb, b)
        return np.einsum("ni,ni->n", pa @ self.V, pb)


def _make_law(V, tau0, allowed, mechanism: str) -> _Law:
    m = V.shape[0]
    U = uniform_rows(m, allowed)
    if mechanism == "identity":
        return _Law(V, tau0, psd_factor(V), None, U, False)
    P = np.eye(m) - 1.0 / m
    return _Law(V, tau0, psd_factor(P @ V @ P, scale=float(np.abs(V).max())), allowed, U, True)


# --------------------------------------------------------------------------------------- the rules

def _trapezoid_axis(sigma: float, tol: float):
    """Nodes g and the weights of the step-h/2 and step-h trapezoid rules for E over g ~ N(0, 1) of a
    function whose nearest complex singularity lies at distance ≥ π/σ.  The step-h error, for an
    integrand analytic in the strip |Im g| < d, is about e^(d²/2)·e^(−2πd/h) (the Gaussian grows by
    e^(d²/2) across the strip): h is the largest step making it e^(−L), L = ln(1/tol) + TRAP_SLACK."""
    if sigma <= 0:
        return np.zeros(1), np.ones(1), np.ones(1)
    G = min(9.0, max(4.0, math.sqrt(2) * float(erfcinv(tol * 1e-3))))
    L = math.log(1 / tol) + TRAP_SLACK
    d = min(math.pi / sigma, math.sqrt(2 * L))  # the strip used: error ~ exp(d²/2 − 2πd/h) ≤ e^(−L)
    h = max(2 * math.pi * d / (L + d * d / 2), 4 * G / TRAP_MAX_NODES)  # bounded cost: the estimate says
    n = int(math.ceil(G / h))
    k = np.arange(-2 * n, 2 * n + 1)
    g = k * (h / 2)
    phi = np.exp(-0.5 * g * g) / math.sqrt(2 * math.pi)
    return g, phi * (h / 2), np.where(k % 2 == 0, phi * h, 0.0)


def _trapezoid(law: _Law, tol: float):
    """r = 1: every entry by the tensor trapezoid rule in (g₁, g₂) at steps h and h/2 (module docstring)."""
    m = law.V.shape[0]
    spread = float(np.ptp(law.B[:, 0])) if law.softmax else float(np.abs(law.B[:, 0]).max())
    G = min(9.0, max(4.0, math.sqrt(2) * float(erfcinv(tol * 1e-3))))
    tail = 2 * float(erfc(G / math.sqrt(2))) * (1 + float(np.abs(law.V).max()))
    K, err, nodes = np.zeros((m, m)), 0.0, 0
    for a in range(m):
        for b in range(a, m):
            r00, r10, r11 = law.factor(a, b)
            g1, w1f, w1c = _trapezoid_axis(spread * max(abs(r00), abs(r10)), tol)
            Y1 = np.outer(g1, law.B[:, 0])
            if a == b:
                f = law.values(Y1, None, a, a)
                q_f, q_c = w1f @ f, w1c @ f
            else:
                g2, w2f, w2c = _trapezoid_axis(spread * abs(r11), tol)
                Y2 = np.outer(g2, law.B[:, 0])
                rows = max(1, MAX_BYTES // (64 * m * len(g2)))
                F = np.concatenate([law.values(np.repeat(Y1[i:i + rows], len(g2), axis=0),
                                               np.tile(Y2, (len(Y1[i:i + rows]), 1)), a, b)
                                    for i in range(0, len(g1), rows)]).reshape(len(g1), len(g2))
                q_f, q_c = w1f @ F @ w2f, w1c @ F @ w2c
            K[a, b] = K[b, a] = q_f
            err = max(err, abs(q_f - q_c) + tail)
            nodes += f.size if a == b else F.size
    return K, err, nodes


def _normal_bank(sampler, n: int) -> np.ndarray:
    """The next n points of a scrambled Sobol' sequence, mapped to N(0, I)."""
    u = sampler.random(n)
    return ndtri(np.clip(u, 2.0**-60, 1 - 2.0**-60))


def _rqmc_pairs(law: _Law, tol: float, n0: int = 2**12, n_max: int = 2**17):
    """2 ≤ r, small m: each entry's r- (diagonal) or 2r-dimensional integral by randomised QMC (no
    antithetic images: reflecting a scrambled net spoils it, measured 2× worse), the off-diagonal with
    the coupled control variate of :func:`_entry_sums`; the replicate means give the standard error;
    doubling until 3·se ≤ tol or n_max points per replicate."""
    m, r = law.V.shape[0], law.B.shape[1]
    samplers = {d: [qmc.Sobol(d, scramble=True, rng=np.random.default_rng([SEED, d, k]))
                    for k in range(REPLICATES)] for d in (r, 2 * r)}
    sums = [None] * REPLICATES
    total, n = 0, n0
    a, b = np.triu_indices(m, 1)
    while True:
        for k in range(REPLICATES):
            Yd = law.B @ _normal_bank(samplers[r][k], n).T
            g = _normal_bank(samplers[2 * r][k], n).T  # interleaved: (g₁, g₂) of each column in turn
            new = _entry_sums(law, Yd, law.B @ g[0::2], law.B @ g[1::2])
            sums[k] = new if sums[k] is None else [x + y for x, y in zip(sums[k], new)]
        total += n
        sf, sg, sfg, sgg = (sum(x[i] for x in sums) / (total * REPLICATES) for i in range(3, 7))
        var = sgg - sg * sg
        beta = np.where(var > 0, (sfg - sf * sg) / np.where(var > 0, var, 1), 0.0)
        est = np.zeros((REPLICATES, m, m))
        for k, (diag, ps, qs, f, gk, _, _) in enumerate(sums):
            est[k][np.diag_indices(m)] = diag / total
            mean_g = np.einsum("pi,pi->p", qs[a], ps[b]) / total**2
            est[k][a, b] = est[k][b, a] = f / total - beta * (gk / total - mean_g)
        err = 3 * float(est.std(axis=0, ddof=1).max()) / math.sqrt(REPLICATES)
        if err <= tol or 2 * total > n_max:
            break
        n = total  # the next block doubles the points: a Sobol' sequence stays balanced at 2^k
    return est.mean(axis=0), err, REPLICATES * total * m * (m + 1) // 2, err <= tol


def _entry_sums(law: _Law, Yd, Y1, Y2):
    """Sums over the nodes: the diagonal f_aa = p_aᵀVp_a and the row sums Σp_a, Σq_a (q = V p) at
    Yd = B g (m×n); for the pairs a < b (all at once) at (Y1, Y2), f = q_aᵀ p_b (row b coupled to row a)
    and g = q_aᵀ p_b^⊥, p_b^⊥ row b's weights at √C_bb·Y2 alone: independent of row a, so
    E[g] = E[q_a]·E[p_b] (from the diagonal's r-dimensional bank), and close to f when the rows are weakly
    correlated — f − β(g − E[g]) has a variance ∝ ρ_ab² there (β = cov(f, g)/var(g)).  Returns
    (Σf_aa, Σp, Σq, Σf, Σg, Σfg, Σg²)."""
    m = law.V.shape[0]
    R = np.array([law.factor(a, a)[0] for a in range(m)])
    pd = law.rows(R[:, None, None] * Yd, np.arange(m))
    qd = law.V @ pd
    diag = np.einsum("ain,ain->a", qd, pd)
    a, b = np.triu_indices(m, 1)
    F = np.array([law.factor(i, j) for i, j in zip(a, b)]).reshape(-1, 3)
    qa = law.V @ law.rows(F[:, 0, None, None] * Y1, a)
    f = np.einsum("pin,pin->pn", qa, law.rows(F[:, 1, None, None] * Y1 + F[:, 2, None, None] * Y2, b))
    g = np.einsum("pin,pin->pn", qa, law.rows(R[b, None, None] * Y2, b))
    return (diag, pd.sum(axis=2), qd.sum(axis=2), f.sum(axis=1), g.sum(axis=1),
            (f * g).sum(axis=1), (g * g).sum(axis=1))


def _softmax_last(T: np.ndarray, allowed) -> np.ndarray:
    """Row softmax over the last axis (tokens), over the allowed tokens (allowed broadcasts against T)."""
    if allowed is not None:
        T = np.where(allowed, T, -np.inf)
    T = np.exp(T - T.max(axis=-1, keepdims=True))
    T /= T.sum(axis=-1, keepdims=True)
    return T


CHEB_NODES = 9  # scale nodes per row group at most (Chebyshev–Lobatto; its 5-node subset checks it)


def _lagrange(nodes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """W (len(x)×len(nodes)): the Lagrange interpolant through ``nodes`` evaluated at x, W @ values."""
    W = np.ones((len(x), len(nodes)))
    for j, t in enumerate(nodes):
        for k, u in enumerate(nodes):
            if k != j:
                W[:, j] *= (x - u) / (t - u)
    return W


def _scale_groups(law: _Law):
    """Rows grouped by mask row; within a group the law depends on the scale c_a = √V_aa/τ0 only, and
    every row quantity is a smooth (analytic) function of c: evaluated at the distinct scales, or, when
    there are more than CHEB_NODES, at Chebyshev–Lobatto nodes and interpolated (W), with W5 the 5-node
    interpolant (its nodes are among the 9) for the error estimate.  [(rows, mask row, nodes, W, W5)]"""
    c = np.sqrt(np.clip(np.diag(law.V), 0, None)) / law.tau0
    by_mask = {}
    for a in range(law.V.shape[0]):
        key = None if law.allowed is None else law.allowed[a].tobytes()
        by_mask.setdefault(key, []).append(a)
    out = []
    for rows in by_mask.values():
        rows = np.array(rows)
        allowed = None if law.allowed is None else law.allowed[rows[0]]
        distinct = np.unique(c[rows])
        if len(distinct) <= CHEB_NODES:
            W = (c[rows][:, None] == distinct[None, :]).astype(float)
            out.append((rows, allowed, distinct, W, None))
            continue
        lo, hi = float(distinct[0]), float(distinct[-1])
        t = 0.5 * (lo + hi) - 0.5 * (hi - lo) * np.cos(np.pi * np.arange(CHEB_NODES) / (CHEB_NODES - 1))
        W5 = np.zeros((len(rows), CHEB_NODES))
        W5[:, ::2] = _lagrange(t[::2], c[rows])
        out.append((rows, allowed, t, _lagrange(t, c[rows]), W5))
    return out


def _block_sums(law: _Law, groups, Y: np.ndarray, n_p: int):
    """One block of n row draws Y = G Bᵀ (n×m).  At each group's scale nodes c: Σ_n q·p, Σ_n p, Σ_n q with
    p = softmax(c·Y) over the group's tokens, q = p V (row a's diagonal entry is q·p at c = c_a).  Pairs,
    over the first n_p indices: row a's draws are Y rolled by a·⌊n/m⌋ (two rows' draws at one index are
    independent), and for a < b the coupled difference Σ_n q_a·(p_b^c − p_b), where
    p_b^c = softmax_b(c_b(ρ_ab Y_a + √(1 − ρ_ab²) Y_b)) has row b's law and the pair's correlation and p_b
    is the same row independent of row a.  Returns ([:func:`_node_sums` per group], pair sums)."""
    m, n = law.V.shape[0], Y.shape[0]
    V32 = law.V.astype(np.float32)
    node_sums = [_node_sums(law, Y, law.U[rows[0]], allowed, nodes) for rows, allowed, nodes, _, _ in groups]
    c = np.sqrt(np.clip(np.diag(law.V), 0, None)) / law.tau0
    idx = (np.arange(m)[:, None] * (n // m) + np.arange(n_p)[None, :]) % n
    Yr = Y[idx]  # m×n_p×m: row a's draws
    own = Yr * c.astype(np.float32)[:, None, None]
    if law.softmax:
        own = _softmax_last(own, None if law.allowed is None else law.allowed[:, None, :])
    Qown = own @ V32
    d = np.sqrt(np.clip(np.diag(law.V), 1e-300, None))
    rho = np.clip(law.V / np.outer(d, d), -1, 1)
    return node_sums, _pair_sums(law, Yr, own, Qown, c, rho, float(np.abs(Y).max()))


def _pair_sums(law: _Law, Yr, own, Qown, c, rho, ymax: float) -> np.ndarray:
    """For a < b: Σ_n [q_a·p_b^c − q_a·p_b − T1], T1 = c_b ρ_ab q_aᵀ J_b Y_a (J_b = dg(p_b) − p_b p_bᵀ) the
    first-order term of p_b^c − p_b in ρ_ab, whose mean c_b ρ_ab Σ_ij E[q_a Y_aᵀ]_ij E[J_b]_ij comes from
    the rows' own banks (:func:`_assemble`): the residual's variance is O(ρ⁴) (measured at m = 64,
    ρ ≈ 0.18: its standard deviation 4.6× below that of the coupled difference alone)."""
    m = law.V.shape[0]
    pairs = np.zeros((m, m))
    bound = math.sqrt(2) * float(c.max()) * ymax
    fixed = np.zeros(m, bool) if law.allowed is None else law.allowed.sum(axis=1) == 1
    for a in range(m - 1):
        b = np.arange(a + 1, m)
        b = b[~fixed[b]]  # a row with one allowed token is constant: K_ab = q_a·E[p_b] exactly
        if fixed[a] or len(b) == 0:
            continue
        r = rho[a, b]
        S = Yr[b] * (np.sqrt(1 - r * r) * c[b]).astype(np.float32)[:, None, None]
        S += Yr[a] * (r * c[b]).astype(np.float32)[:, None, None]
        if not law.softmax:
            pairs[a, b] += (np.einsum("ni,bni->b", Qown[a], S, dtype=np.float64)
                            - np.einsum("ni,bni->b", Qown[a], own[b], dtype=np.float64))
            continue
        if law.allowed is not None:
            S = np.where(law.allowed[b][:, None, :], S, -np.inf)
        if bound > 60:  # float32 exp overflows at 88: shift by the row maximum only when needed
            S -= S.max(axis=2, keepdims=True)
        np.exp(S, out=S)
        f = np.einsum("ni,bni->bn", Qown[a], S) / S.sum(axis=2)
        u1, u2, u3 = np.einsum("kni,bni->kbn", np.stack([Qown[a] * Yr[a], Qown[a], Yr[a]]), own[b])
        pairs[a, b] += (f - u2 - (r * c[b]).astype(np.float32)[:, None] * (u1 - u2 * u3)).sum(axis=1, dtype=np.float64)
    return pairs


def _node_sums(law: _Law, Y, u, allowed, nodes):
    """Per scale node t, sums over the draws of f = pᵀVp, of the Stein control variate z and of f·z, z²,
    and Σ p, Σ q, Σ p pᵀ, Σ q Yᵀ (p = softmax(tY) over the allowed tokens, q = p V).  With s = tY ~ N(0, t²Ṽ), Gaussian
    integration by parts gives E[s_j p_j] = t² Σ_k Ṽ_jk E[p_j(δ_jk − p_k)], so

        z = Σ_j [Y_j (p_j − u_j)/t − Ṽ_jj p_j] + pᵀṼp,   E[z] = 0,

    and pᵀṼp = pᵀVp − 2 (V1)·p/m + 1ᵀV1/m² (1ᵀp = 1): z follows f closely where the softmax is peaked
    (measured at m = 64: the standard deviation of f − βz is 2–3× below that of f for t ≥ 1)."""
    m = law.V.shape[0]
    V32 = law.V.astype(np.float32)
    vt = np.diag(law.V) - 2 * law.V.sum(axis=1) / m + law.V.sum() / m**2  # diag Ṽ
    v1 = law.V.sum(axis=1) / m
    K = len(nodes)
    out = [np.zeros(K) for _ in range(4)] + [np.zeros((K, m)), np.zeros((K, m)), np.zeros((K, m, m)),
                                             np.zeros((K, m, m))]
    for k, t in enumerate(nodes):
        p = _softmax_last(Y * np.float32(t), allowed) if law.softmax else Y * np.float32(t)
        q = p @ V32
        f = np.einsum("ni,ni->n", q, p, dtype=np.float64)
        z = np.zeros_like(f)
        if t > 0 and law.softmax:
            z = ((Y * (p - u.astype(np.float32))).sum(axis=1, dtype=np.float64) / t - p @ vt
                 + f - 2 * (p @ v1) + law.V.sum() / m**2)
        pm = p.sum(axis=0, dtype=np.float64)
        if law.softmax:  # the mean from g and −g: its odd part, most of it (all for two tokens), cancels
            pm = 0.5 * (pm + _softmax_last(Y * np.float32(-t), allowed).sum(axis=0, dtype=np.float64))
        for x, y in zip(out, (f.sum(), z.sum(), (f * z).sum(), (z * z).sum(), pm, pm @ law.V,
                              (p.T @ p).astype(np.float64), (q.T @ Y).astype(np.float64))):
            x[k] += y
    return out


def _assemble(law: _Law, groups, node_sums, pairs, n: int, n_p: int, beta, coarse: bool = False):
    """K from the sums: the diagonal (f − β z), the row means and the first-order pair term's mean
    (:func:`_pair_sums`) interpolated from the scale nodes (W, or W5 if coarse)."""
    m = law.V.shape[0]
    K = np.zeros((m, m))
    pbar, qbar = np.zeros((m, m)), np.zeros((m, m))
    Jbar, QY = np.zeros((m, m, m)), np.zeros((m, m, m))
    for (rows, _, _, W, W5), (sf, sz, _, _, sp, sq, spp, sqy), bt in zip(groups, node_sums, beta):
        Wk = W5 if coarse and W5 is not None else W
        K[rows, rows] = Wk @ (sf - bt * sz) / n
        pbar[rows], qbar[rows] = Wk @ sp / n, Wk @ sq / n
        Jbar[rows] = -np.tensordot(Wk, spp, axes=1) / n
        QY[rows] = np.tensordot(Wk, sqy, axes=1) / n
    off = pairs / n_p + qbar @ pbar.T
    if law.softmax:
        Jbar[:, np.arange(m), np.arange(m)] += pbar
        d = np.sqrt(np.clip(np.diag(law.V), 1e-300, None))
        c = np.sqrt(np.clip(np.diag(law.V), 0, None)) / law.tau0
        off += np.clip(law.V / np.outer(d, d), -1, 1) * c[None, :] * (QY.reshape(m, -1) @ Jbar.reshape(m, -1).T)
    off = np.triu(off, 1)
    return K + off + off.T


def _cv_beta(acc, n: int):
    """The control variate's coefficient per group and node, cov(f, z)/var(z), from all replicates' sums."""
    out = []
    for g in range(len(acc[0][0])):
        sf, sz, sfz, szz = (sum(a[0][g][i] for a in acc) for i in range(4))
        N = n * len(acc)
        var = szz / N - (sz / N) ** 2
        out.append(np.where(var > 0, (sfz / N - sf * sz / N**2) / np.where(var > 0, var, 1), 0.0))
    return out


def _mc_work(groups, m: int, block: int, n_p: int) -> float:
    """Rough floating-point work of one block for every replicate (for the budget)."""
    nodes = sum(len(g[2]) for g in groups)
    calls = 15 * m + 20 * nodes  # NumPy calls, each worth about 50 µs of work on a loaded core
    return REPLICATES * (nodes * block * m * (12 + 2 * m) + n_p * m * m * (m - 1) / 2 * 12 + 2 * n_p * m**3
                         + 1.75e5 * calls)


def _mc_rows(law: _Law, tol: float, budget: float = 1.0):
    """m > PAIR_MAX_M: REPLICATES seeded banks of row draws (blocks of ``block`` draws, the pairs on the
    first n_p of each); K_aa = E[q_a·p_a − β z_a], K_ab = E[q_a·(p_b^c − p_b)] + E[q_a]·E[p_b]
    (:func:`_block_sums`, :func:`_node_sums`); blocks per replicate double from one until the error
    (3·se over the replicates, plus the scale interpolation's) is ≤ tol or the work would pass
    budget·MC_WORK (about one second on two cores at m = 64 for budget = 1)."""
    m = law.V.shape[0]
    block = int(min(4096, max(256, 2**17 // m)))
    n_p = max(16, block // max(1, min(16, m // 4)))
    groups = _scale_groups(law)
    while block > 256 and _mc_work(groups, m, block, n_p) > budget * MC_WORK:  # e.g. a causal mask: no
        block, n_p = block // 2, max(16, n_p // 2)                              # two rows share draws
    n_max = max(1, int(budget * MC_WORK / _mc_work(groups, m, block, n_p)))
    rngs = [np.random.default_rng([SEED, 3, k]) for k in range(REPLICATES)]
    acc = [None] * REPLICATES
    B32 = law.B.astype(np.float32)
    blocks, n = 0, 1
    while True:
        for k in range(REPLICATES):
            for _ in range(n):
                ns, pr = _block_sums(law, groups, rng_normal(rngs[k], (block, B32.shape[1])) @ B32.T, n_p)
                acc[k] = (ns, pr) if acc[k] is None else (
                    [tuple(x + y for x, y in zip(u, v)) for u, v in zip(acc[k][0], ns)], acc[k][1] + pr)
        blocks += n
        beta = _cv_beta(acc, blocks * block)
        est = np.stack([_assemble(law, groups, ns, pr, blocks * block, blocks * n_p, beta) for ns, pr in acc])
        K = est.mean(axis=0)
        coarse = np.mean([_assemble(law, groups, ns, pr, blocks * block, blocks * n_p, beta, True)
                          for ns, pr in acc], axis=0)
        err = 3 * float(est.std(axis=0, ddof=1).max()) / math.sqrt(REPLICATES) + float(np.abs(K - coarse).max())
        if err <= tol or 2 * blocks > n_max:
            break
        n = blocks
    return K, err, REPLICATES * blocks * (block * m + n_p * m * (m - 1) // 2), err <= tol


def rng_normal(rng, shape):
    """Standard normals in float32 from a seeded generator (the bank's only source of randomness)."""
    return rng.standard_normal(shape, dtype=np.float32)


def k_att(V, tau0, mask=None, *, accuracy=None, budget: float = 1.0, mechanism: str = "softmax",
          ) -> AttentionKernelValue:
    """K_att(V) = E[softmax_M(S) V softmax_M(S)ᵀ], vec S ~ N(0, V⊗V/τ0²), with its error (module docstring).

    V: m×m symmetric PSD (1 ≤ m ≤ MAX_M); tau0 > 0; mask: None, "causal", a covsde Mask or an m×m 0/1
    matrix (every row allowing a token); accuracy: the max-abs error asked for (default 1e-9 for m = 2,
    1e-5 for m ≤ 4, 1e-3 beyond; the rules stop at their largest bank, ``converged`` says whether it was
    met); budget: a multiplier of the largest bank of the m > PAIR_MAX_M rule (default 1: about one second
    at m = 64 on one core); mechanism="identity" replaces the softmax by A = S (a check: :func:`k_identity`
    is exact).
    Deterministic: fixed rules and fixed, seeded banks."""
    V = check_v(V)
    tau0 = check_tau0(tau0)
    m = V.shape[0]
    if mechanism not in ("softmax", "identity"):
        raise CovsdeInputError(f"mechanism must be 'softmax' or 'identity', got {mechanism!r}")
    allowed = check_mask(mask, m)
    if mechanism == "identity" and allowed is not None:
        raise CovsdeInputError("mask: the identity mechanism has no mask (it is not a softmax)")
    tol = default_accuracy(m) if accuracy is None else check_accuracy(accuracy)
    budget = check_budget(budget)
    law = _make_law(V, tau0, allowed, mechanism)
    r = law.B.shape[1]
    if r == 0:
        K = law.U @ V @ law.U.T if law.softmax else np.zeros((m, m))
        return AttentionKernelValue(K, 0.0, "exact", 0, True)
    if r == 1 and m <= PAIR_MAX_M:
        K, err, nodes = _trapezoid(law, tol)
        return AttentionKernelValue(K, err, "trapezoid", nodes, err <= tol)
    if m <= PAIR_MAX_M:
        K, err, nodes, ok = _rqmc_pairs(law, tol)
        return AttentionKernelValue(K, err, "rqmc-pairs", nodes, ok)
    K, err, nodes, ok = _mc_rows(law, tol, budget)
    return AttentionKernelValue(K, err, "mc-rows", nodes, ok)


def check_accuracy(accuracy) -> float:
    try:
        a = float(accuracy)
    except (TypeError, ValueError):
        raise CovsdeInputError(f"accuracy must be a number, got {accuracy!r}") from None
    if isinstance(accuracy, bool) or not math.isfinite(a) or not 1e-13 <= a <= 1:
        raise CovsdeInputError(f"accuracy must be a max-abs error in [1e-13, 1], got accuracy={accuracy!r}")
    return a


def check_budget(budget) -> float:
    try:
        b = float(budget)
    except (TypeError, ValueError):
        raise CovsdeInputError(f"budget must be a number, got {budget!r}") from None
    if isinstance(budget, bool) or not math.isfinite(b) or not 0 < b <= 1000:
        raise CovsdeInputError(f"budget must be in (0, 1000], got budget={budget!r}")
    return b
