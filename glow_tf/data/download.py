"""Download MNIST / CIFAR-10 with md5 verification (logic behind ``data/download.py``).

A file is written under its final name only after its md5 matches the published checksum; a
mismatching download is deleted and reported, and an existing file with the wrong checksum is
refused rather than overwritten or used.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import urllib.request
from pathlib import Path
from typing import Callable

from glow_tf.data.errors import DataError, describe

MNIST_MD5 = {
    'train-images-idx3-ubyte.gz': 'f68b3c2dcbeaaa9fbdd348bbdeb94873',
    'train-labels-idx1-ubyte.gz': 'd53e105ee54ea40749a09fcbcd1e9432',
    't10k-images-idx3-ubyte.gz': '9fb629c4189551a2d022fa330f9573f3',
    't10k-labels-idx1-ubyte.gz': 'ec29112dd5afa0611ce80d1b7f02629c',
}
CIFAR10_MD5 = {'cifar-10-python.tar.gz': 'c58f30108f718f92721af3b95e74349a'}

# Official location first, then a byte-identical mirror (the md5 check makes mirrors safe).
MIRRORS = {
    'mnist': (
        'http://yann.lecun.com/exdb/mnist/',
        'https://ossci-datasets.s3.amazonaws.com/mnist/',
    ),
    'cifar10': ('https://www.cs.toronto.edu/~kriz/',),
}
CHECKSUMS = {'mnist': MNIST_MD5, 'cifar10': CIFAR10_MD5}

Fetch = Callable[[str, Path], None]


def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex md5 of a file."""
    h = hashlib.md5()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


def fetch_url(url: str, dest: Path, timeout: float = 60.0) -> None:
    """Stream ``url`` (http, https or file://) into ``dest``."""
    with urllib.request.urlopen(url, timeout=timeout) as r, open(dest, 'wb') as f:
        shutil.copyfileobj(r, f, 1 << 20)


def download(
    problem: str,
    dest: str | os.PathLike,
    base_url: str | None = None,
    fetch: Fetch | None = None,
    checksums: dict[str, str] | None = None,
    quiet: bool = False,
) -> Path:
    """Download the files of ``problem`` ('mnist' or 'cifar10') into ``dest`` and verify their md5.

    ``base_url`` replaces the official locations (``file://`` works); ``fetch(url, path)`` replaces
    the HTTP client; ``checksums`` ({file name: md5}) replaces the published checksums. Files
    already in ``dest`` with the right md5 are kept; with a wrong md5 they are refused (DataError).
    Returns ``dest``.
    """
    if problem not in CHECKSUMS:
        raise DataError(
            f'problem={problem!r}: downloads are available for {", ".join(CHECKSUMS)} only'
        )
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    fetch = fetch or fetch_url
    for name, md5 in (checksums or CHECKSUMS[problem]).items():
        target = dest / name
        if target.exists():
            actual = md5sum(target)
            if actual != md5:
                raise describe(
                    target,
                    f'md5 {actual} differs from the expected {md5}; refusing to use it '
                    '(delete the file to download it again)',
                )
            continue
        bases = (base_url,) if base_url else MIRRORS[problem]
        failures = []
        for base in bases:
            url = base.rstrip('/') + '/' + name
            part = dest / (name + '.part')
            if not quiet:
                print(f'downloading {url}', file=sys.stderr)
            try:
                fetch(url, part)
            except Exception as e:  # network errors of any kind: try the next mirror
                failures.append(f'{url}: {e}')
                part.unlink(missing_ok=True)
                continue
            actual = md5sum(part)
            if actual != md5:
                part.unlink(missing_ok=True)
                raise DataError(
                    f'{url}: downloaded {name} has md5 {actual}, expected {md5}; '
                    'refused and deleted'
                )
            os.replace(part, target)
            break
        else:
            raise DataError(f'{target}: could not download {name} ({"; ".join(failures)})')
    return dest


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python data/download.py {mnist,cifar10} [--dest DIR] [--url BASE]``."""
    from glow_tf.data.cache import cache_root

    p = argparse.ArgumentParser(
        description='Download MNIST or CIFAR-10 and verify the md5 checksums.'
    )
    p.add_argument('problem', choices=sorted(CHECKSUMS))
    p.add_argument(
        '--dest', help='target directory (default: $GLOW_CACHE_DIR or ~/.cache/glow_tf, /<problem>)'
    )
    p.add_argument(
        '--url', help='base URL replacing the official location (http://, https:// or file://)'
    )
    args = p.parse_args(argv)
    dest = Path(args.dest) if args.dest else cache_root() / args.problem
    try:
        out = download(args.problem, dest, base_url=args.url)
    except DataError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'{args.problem}: all files present with verified md5 in {out}')
    return 0
