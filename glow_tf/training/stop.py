"""Stop requests: SIGTERM / SIGINT become a flag that the training loop reads at a step boundary.

    with StopRequest() as stop:       # installs the handlers (main thread only), then restores
        ... stop.signum ...           # 0, or the number of the first signal received

Schedulers (Slurm, Kubernetes, preemptible VMs) send SIGTERM some seconds before SIGKILL. The
handler only records the signal; the trainer finishes the current step, shares the flag with every
worker through the step's statistics allreduce (so under Horovod all ranks stop after the same
step even if only one of them was signalled), rank 0 writes a checkpoint, and the run raises
`StoppedBySignal`, which `train.py` turns into exit status 128 + signal number (143 for SIGTERM,
130 for SIGINT: what a shell reports for a process ended by that signal, so schedulers see
"terminated", and a requeue resumes from the checkpoint). A second Ctrl-C stops at once
(KeyboardInterrupt), without a checkpoint.
"""

import signal
import sys
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_code(signum):
    """Exit status of a run stopped by `signum` (the shell's 128 + N convention)."""
    return 128 + int(signum)


class StoppedBySignal(Exception):
    """Training stopped cleanly on a signal after writing `checkpoint` (None on ranks > 0).

    Args:
        signum: the signal received (SIGTERM, SIGINT); the exit status is 128 + signum.
        step: the step the run stopped after.
        checkpoint: the checkpoint prefix written, or None.
    """

    def __init__(self, signum, step, checkpoint):
        self.signum, self.step, self.checkpoint = int(signum), int(step), checkpoint
        name = (
            signal.Signals(self.signum).name
            if self.signum in signal.Signals._value2member_map_
            else f'signal {self.signum}'
        )
        where = f"checkpoint at {checkpoint}" if checkpoint else "checkpoint written by rank 0"
        super().__init__(
            f"stopped by {name} at step {step}; {where}. Run the same command again "
            f"to resume (exit status {exit_code(self.signum)})"
        )


class StopRequest:
    """Context manager turning STOP_SIGNALS into `signum` (see module docstring).

    Args:
        signals: the signals to catch (default SIGTERM and SIGINT).
        announce: print a line when the first signal arrives.
    """

    def __init__(self, signals=STOP_SIGNALS, announce=True):
        self.signals = tuple(signals)
        self.signum = 0
        self.announce = announce
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: the user wants out now
        if not self.signum:
            self.signum = int(signum)
            if self.announce:
                print(
                    f"received {signal.Signals(signum).name}: stopping after the current step "
                    "and writing a checkpoint",
                    file=sys.stderr,
                    flush=True,
                )

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
        return False
