"""The CLI variants' names and the parameters each takes (shared by :mod:`.variants` and :mod:`.presets`)."""

VARIANTS = ("mlp", "resnet", "attention", "standard-attention", "transformer")
# which names each variant uses (others are refused as inconsistent)
USES = {
    "mlp": {"c_plus", "c_minus", "p", "activation", "a", "kappa"},
    "resnet": {"c_plus", "c_minus", "p", "activation", "a", "gamma", "lam", "q", "kappa", "norm"},
    "attention": {"gamma", "lam", "tau0", "e", "heads", "centre", "identity", "skip", "q", "kappa", "mask", "norm"},
    "standard-attention": {"gamma", "lam", "tau0", "e", "heads", "centre", "identity", "skip", "q", "kappa", "mask", "norm"},
    "transformer": {"c_plus", "c_minus", "p", "activation", "a", "gamma", "lam", "gamma1", "lam1", "gamma2", "lam2",
                    "tau0", "e", "heads", "centre", "identity", "q", "kappa", "mask", "layout", "mlp", "norm"},
}
