"""Error and warning types shared by every data source."""

from __future__ import annotations

import os
import warnings


class DataError(ValueError):
    """Bad or missing input data.

    The message always names the offending file, directory, flag or value and says what was
    expected, e.g. ``"/data/mnist/train-images-idx3-ubyte.gz: bad magic number 2049, expected
    2051 (IDX images)"``.
    """


class DataWarning(UserWarning):
    """Something in the data was tolerated (skipped files, a header that disagrees with the
    rows)."""


def describe(path: str | os.PathLike, problem: str) -> DataError:
    """Build a :class:`DataError` whose message starts with the path."""
    return DataError(f'{os.fspath(path)}: {problem}')


def warn(message: str) -> None:
    """Emit a :class:`DataWarning` attributed to the caller of the data API."""
    warnings.warn(message, DataWarning, stacklevel=3)


def summarise_skipped(
    skipped: list[tuple[str, str]], total: int, where: str, limit: int = 5
) -> str:
    """Human-readable summary of skipped files:
    ``"skipped 2 of 10 files under DIR: a (why); b (why)"``."""
    shown = '; '.join(f'{p} ({why})' for p, why in skipped[:limit])
    more = f'; ... and {len(skipped) - limit} more' if len(skipped) > limit else ''
    return f'skipped {len(skipped)} of {total} files under {where} (--skip_bad): {shown}{more}'
