"""The block contract as code: every operation of the Ops protocol is implemented by the symbolic
and the tensor interpreters with the protocol's signature, and both declare the protocol."""
import inspect

from covsde.derive.algebra import SymbolicOps
from covsde.derive.ops import Ops
from covsde.validate.backends import TorchOps

OPERATIONS = [n for n, f in vars(Ops).items() if inspect.isfunction(f) and not n.startswith("_")]


def test_the_protocol_lists_the_operations_blocks_use():
    assert set(OPERATIONS) == {"linear", "act", "logits", "softmax", "matmul", "add", "scale", "concat", "heads",
                               "eye", "uniform", "note", "norm", "mul"}
    assert all(inspect.getdoc(getattr(Ops, n)) for n in OPERATIONS)


def test_both_interpreters_declare_and_implement_it():
    for interp in (SymbolicOps, TorchOps):
        assert issubclass(interp, Ops)
        for name in OPERATIONS:
            impl = vars(interp).get(name)
            assert impl is not None, (interp.__name__, name)  # implemented, not inherited from the protocol
            want = [p.name for p in inspect.signature(getattr(Ops, name)).parameters.values()]
            got = [p.name for p in inspect.signature(impl).parameters.values()]
            assert got == want, (interp.__name__, name, got, want)
