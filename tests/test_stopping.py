"""The stop request: every stop signal is caught the same way, in this process, and the handlers
before it come back. (A real child stopped by a real signal is in test_run.py.)"""

import os
import signal

import pytest

from recovery.stopping import STOP_SIGNALS, StopRequest


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_the_first_stop_signal_is_a_request_and_the_previous_handler_comes_back(signum):
    before = signal.getsignal(signum)
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signum)  # delivered before kill returns: the signal is for this thread
        assert stop.requested and stop.signal == signum
        assert stop.describe() == ("Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name)
    assert signal.getsignal(signum) is before


def test_a_second_ctrl_c_interrupts_at_once():
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert stop.signal == signal.SIGINT
