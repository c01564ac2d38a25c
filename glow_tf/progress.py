"""Progress reporting for the slow steps of the command-line tools (on stderr, so stdout stays
clean for results): a tqdm bar for loops with a known length, and a timed stage line for a
single long call (model build, tracing, export).

    for batch in progress_bar(batches, total=n, desc='test', enabled=show):
        ...
    with stage('data-dependent init on 256 images', enabled=show):
        model.initialize(x)
    # stderr: "data-dependent init on 256 images ..." then "data-dependent init on 256 images: 4.2s"
"""

import contextlib
import sys
import time


def progress_bar(iterable=None, total=None, desc='', enabled=True, unit='it'):
    """A tqdm bar on stderr that disappears when done; a plain pass-through when not enabled."""
    from tqdm import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        disable=not enabled,
        leave=False,
        dynamic_ncols=True,
        file=sys.stderr,
        unit=unit,
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
