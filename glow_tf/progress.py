"""Progress reporting for the slow steps of the command-line tools (on stderr, so stdout stays
clean for results): a tqdm bar for loops with a known length, and a timed stage line for a
single long call (model build, tracing, export).

    for batch in progress_bar(batches, total=n, desc='test', enabled=show):
        ...
    with stage('data-dependent init on 256 images', enabled=show):
        model.initialize(x)
    # stderr: "data-dependent init on 256 images ..." then "data-dependent init on 256 images: 4.2s"

On a terminal the bar redraws in place. When stderr is a file or a pipe (CI, nohup, Slurm) a
redrawn bar would write every refresh into the log, so the same calls print plain lines instead:
at most one per `LINE_INTERVAL_S` seconds, and one when the loop ends.
"""

import contextlib
import sys
import time

LINE_INTERVAL_S = 30.0  # plain-line progress: at most one line per this many seconds


def progress_bar(iterable=None, total=None, desc='', enabled=True, unit='it', initial=0):
    """Progress on stderr: a tqdm bar that disappears when done when stderr is a terminal,
    `LineProgress` lines otherwise, a plain pass-through when not enabled."""
    if enabled and not sys.stderr.isatty():
        return LineProgress(iterable, total, desc, unit, initial)
    from tqdm import tqdm

    return tqdm(
        iterable,
        total=total,
        initial=initial,
        desc=desc,
        disable=not enabled,
        leave=False,
        dynamic_ncols=True,
        file=sys.stderr,
        unit=unit,
    )


class LineProgress:
    """The part of tqdm's interface glow_tf uses, printing whole lines instead of redrawing:
    `desc: n/total unit (rate/s, elapsed) postfix`, at most every `interval` seconds and once
    at the end.

    Args:
        iterable: what to iterate over (optional; else call `update`).
        total: the expected count, or None.
        desc: the label at the start of each line.
        unit: the name of one item.
        initial: the count already done (a resumed epoch).
        interval: seconds between lines (default `LINE_INTERVAL_S`).
        stream: where lines go (default stderr).
    """

    def __init__(
        self, iterable=None, total=None, desc='', unit='it', initial=0, interval=None, stream=None
    ):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n = self._start = int(initial)
        self.interval = LINE_INTERVAL_S if interval is None else float(interval)
        self.stream = stream or sys.stderr
        self.postfix = ''
        self._t0 = self._last = time.perf_counter()
        self._closed = False

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def update(self, n=1):
        self.n += n
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self._line(now)

    def set_postfix_str(self, text='', refresh=True):
        self.postfix = str(text)

    def set_postfix(self, refresh=True, **values):
        self.postfix = ', '.join(f'{k}={v}' for k, v in values.items())

    def write(self, text, file=None):
        print(text, file=file or self.stream, flush=True)

    def close(self):
        if not self._closed:
            self._closed = True
            self._line(time.perf_counter(), final=True)

    def _line(self, now, final=False):
        self._last = now
        elapsed = now - self._t0
        done = self.n - self._start
        count = f'{self.n}/{self.total}' if self.total is not None else f'{self.n}'
        rate = f'{done / elapsed:.2f} {self.unit}/s, ' if elapsed > 0 and done else ''
        end = ' done' if final else ''
        post = f' {self.postfix}' if self.postfix and not final else ''
        print(
            f'{self.desc}: {count} {self.unit}{end} ({rate}{elapsed:.1f}s){post}',
            file=self.stream,
            flush=True,
        )


@contextlib.contextmanager
def stage(desc, enabled=True, stream=None):
    """Print `desc ...` before a long call and `desc: N.Ns` after it (to stderr by default)."""
    stream = stream or sys.stderr
    t0 = time.perf_counter()
    if enabled:
        print(f"{desc} ...", file=stream, flush=True)
    yield
    if enabled:
        print(f"{desc}: {time.perf_counter() - t0:.1f}s", file=stream, flush=True)
