"""derive/: SDE coefficients of the neural covariance SDE from one-step maps (SymPy only)."""
from .activations import ShapedReLU, ShapedSmooth, Unshaped, make_activation
from .blocks import (Act, Attention, Block, DenseLayer, Linear, MLPBranch, Residual, ResNetBranch, Serial,
                     transformer_block)
from .engine import derive
from .errors import CovsdeInputError, NoLimit
from .points import random_psd
from .result import Derivation
from .symbols import V_matrix, param, v_symbol, v_symbols

__all__ = ["ShapedReLU", "ShapedSmooth", "Unshaped", "make_activation", "Act", "Attention", "Block", "DenseLayer", "Linear",
           "MLPBranch", "Residual", "ResNetBranch", "Serial", "transformer_block", "derive", "CovsdeInputError",
           "NoLimit", "Derivation", "random_psd", "V_matrix", "param", "v_symbol", "v_symbols"]
