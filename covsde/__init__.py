"""covsde: the neural covariance SDE — derive, integrate, validate."""
__version__ = "0.1.0"
