"""Progress on stderr: a redrawn tqdm bar on a terminal, whole lines in a log file or pipe."""

import io

from glow_tf import progress


def test_line_progress_prints_whole_lines_per_interval_and_at_the_end(monkeypatch):
    clock = iter([0.0, 10.0, 31.0, 35.0, 62.0, 70.0])  # perf_counter at init, then per call
    monkeypatch.setattr(progress.time, 'perf_counter', lambda: next(clock))
    out = io.StringIO()
    bar = progress.LineProgress(range(4), total=4, desc='test', unit='batch', stream=out)
    seen = list(bar)  # updates at t = 10 (quiet), 31 (line), 35 (quiet), 62 (line); close at 70
    assert seen == [0, 1, 2, 3]
    lines = out.getvalue().splitlines()
    assert '\r' not in out.getvalue() and len(lines) == 3
    assert lines[0].startswith('test: 2/4 batch (') and '31.0s' in lines[0]
    assert lines[1].startswith('test: 4/4 batch (')
    assert lines[2].startswith('test: 4/4 batch done (') and '70.0s' in lines[2]


def test_line_progress_counts_from_a_resumed_start_and_shows_the_postfix():
    out = io.StringIO()
    with progress.LineProgress(total=10, desc='epoch 3', initial=6, interval=0, stream=out) as bar:
        bar.set_postfix(bpd='1.234')
        bar.update(2)
    first, last = out.getvalue().splitlines()
    assert first.startswith('epoch 3: 8/10 it (') and first.endswith('bpd=1.234')
    assert last.startswith('epoch 3: 8/10 it done')


def test_progress_bar_is_lines_off_a_terminal_and_tqdm_on_one(monkeypatch):
    class Stream(io.StringIO):
        def __init__(self, tty):
            super().__init__()
            self.tty = tty

        def isatty(self):
            return self.tty

    monkeypatch.setattr(progress.sys, 'stderr', Stream(False))
    assert isinstance(progress.progress_bar(total=3, desc='x'), progress.LineProgress)
    monkeypatch.setattr(progress.sys, 'stderr', Stream(True))
    bar = progress.progress_bar(total=3, desc='x')
    assert not isinstance(bar, progress.LineProgress) and bar.total == 3
    bar.close()
    off = progress.progress_bar(range(2), desc='x', enabled=False)
    assert not isinstance(off, progress.LineProgress) and list(off) == [0, 1]
