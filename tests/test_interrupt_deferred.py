"""A Ctrl-C in a Python caller's process (a notebook's Interrupt) during a lazy import or a loader's worker start is
raised after it (runtime.interrupt_deferred): interrupted half way, those left the process broken for good."""
import _thread
import signal

import pytest

from mobilenet_v1.runtime import interrupt_deferred


@pytest.fixture(autouse=True)
def pythons_own_ctrl_c():
    """Python's own SIGINT handler, as a notebook's kernel and a plain script have it: pytest-xdist's workers ignore
    SIGINT (the suite's processes), where the block defers nothing and a simulated Ctrl-C is lost."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_ctrl_c_inside_the_block_is_raised_when_it_ends_and_the_handler_is_put_back():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupt_deferred():
            _thread.interrupt_main()  # the handler runs at the next bytecode: here, it only records
            done.append("rest of the block")
    assert done == ["rest of the block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_inside_the_block_raises_at_once():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupt_deferred():
            _thread.interrupt_main()
            done.append(1)
            _thread.interrupt_main()
            done.append(2)
    assert done == [1]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_handler_of_the_callers_own_is_left_alone():
    heard = []
    before = signal.signal(signal.SIGINT, lambda signum, frame: heard.append(signum))
    try:
        with interrupt_deferred():
            _thread.interrupt_main()
            assert heard == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, before)
