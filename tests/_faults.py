"""Test-only client faults, as update attacks of the Byzantine clients: one that raises, one that hangs.

Registered under ``test-raise`` and ``test-hang`` by :func:`registered` (a context manager, so
they never leak into other tests' view of the attack registry); they travel to Ray's client
actors with the ClientApp (pickled by value, so the actors need not import this module).
"""

import contextlib
import sys
import time

import cloudpickle

from fedrobust.attacks import ATTACKS, UpdateAttack, register_attack


class Raise(UpdateAttack):
    """The client raises instead of replying."""

    def _corrupt(self, message, generator):
        raise RuntimeError("test-raise: this client fails on purpose")


class Hang(UpdateAttack):
    """The client sleeps ``seconds`` before it replies honestly (longer than the round timeout)."""

    def __init__(self, seconds: float = 30.0) -> None:
        self.seconds = float(seconds)

    def _corrupt(self, message, generator):
        time.sleep(self.seconds)
        return message.clone()


@contextlib.contextmanager
def registered():
    """Register both faults for the duration of the block and have cloudpickle ship them by value."""
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    names = [name for name, cls in (("test-raise", Raise), ("test-hang", Hang)) if name not in ATTACKS]
    for name in names:
        register_attack(name, {"test-raise": Raise, "test-hang": Hang}[name])
    try:
        yield
    finally:
        for name in names:
            ATTACKS.pop(name, None)
