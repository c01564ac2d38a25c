"""The docs' examples run as written, so the docs cannot drift from the code (issue 22 item 10).

Every fenced code block in README.md and docs/*.md tagged ``python`` or ``bash`` / ``sh`` /
``shell`` / ``console`` is either run here or carries a skip marker with its reason on the line
right before it::

    <!-- docs-test: skip (trains for minutes) -->

A block with neither is run, so a new example is tested the day it is written (and a new slow
one fails its timeout until it is marked). The rule for a skip: the block trains or benchmarks
for minutes, needs a GPU, several hosts, the network or a server that runs until stopped,
writes into the repository (models/, docs/likelihood/), names a run that only a skipped
command above produces, or is a signature / pseudo-code, or is already run by another test
(the reason names that test file, which must exist). Everything else runs: ``--help``,
``sample.py`` / ``manipulate.py`` against the shipped models/, the Python API on small models.

A block may also carry a setup marker, run just before it and not shown by a Markdown viewer;
it supplies what the prose leaves to the reader (a photo called ``face.jpg``, "your uint8
images", the log dir ``LOGDIR`` of a run)::

    <!-- docs-test: setup
    cp models/celeba64_5bit/faces/008229.jpg face.jpg
    -->

A replace marker shrinks a block the doc presents as an example (a quick start, "your
images") so that it runs in seconds -- fewer images or steps, a smaller model -- and nothing
else; ``old`` must occur in the block, so the marker cannot outlive the text it edits::

    <!-- docs-test: replace (model.fit(x_train, => model.fit(x_train[:128],) -->

How the blocks run:

- In a sandbox: ``tmp_path/repo`` holds a symlink to every top-level entry of the repository
  (so paths in the docs -- ``models/celeba64_5bit``, ``sample.py`` -- mean what they mean at
  the repo root) and ``tmp_path/shared`` links the shared data, so ``../shared/data/...``
  resolves as it does from a checkout (the ``shared_data`` fixture of tests/conftest.py).
  Outputs land in the sandbox; the test also checks that ``git status`` of the repository did
  not change.
- Python: one subprocess per document runs its blocks in order in one namespace, as a reader
  would (later blocks use the ``model`` of earlier ones). ``>>>`` blocks are run line by line
  and an expression followed by an expected output is compared with its ``repr``. Tracebacks
  name the document and its line.
- Shell: one ``bash -e -o pipefail`` subprocess per block (setup, then the block as written).
  ``$TINY_MODEL`` is the log dir of the tests' tiny trained model (tests/tiny_model.py), for
  setups that stand in for a run the docs call ``LOGDIR`` (Python setups read it from
  ``os.environ``).
- For every shell block, run or skipped, each ``python train.py|sample.py|manipulate.py|
  demo.py|score.py ...`` command line is parsed by that script's own argparse parser (so a
  renamed flag in a skipped training command fails too) and every other ``python X.py`` names
  a file that exists.

Untagged blocks are output, diagrams or synopses and are not run; an untagged block whose
lines read like commands (``python ...``, ``$ ...``) or Python (``import ...``) fails, so a
command is never left untagged by accident (tag a synopsis ``text``).
docs/data.md's "Adding a dataset" example is run by tests/test_data_problems.py and
docs/examples/fit_mnist.py is the README's 7-minute results run; neither is repeated here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))]
PYTHON = {'python', 'py', 'pycon'}
SHELL = {'bash', 'sh', 'shell', 'console'}
FENCE = re.compile(r'^(\s*)```\s*([\w+-]*)\s*$')
MARKER = re.compile(r'<!--\s*docs-test:(.*?)-->', re.S)
PYTHON_TIMEOUT = 240  # seconds for one document's Python blocks
SHELL_TIMEOUT = 120  # seconds for one shell block
CLI_SCRIPTS = {
    'train.py': 'glow_tf.cli.train',
    'sample.py': 'glow_tf.cli.sample',
    'manipulate.py': 'glow_tf.cli.manipulate',
    'demo.py': 'glow_tf.cli.demo',
    'score.py': 'glow_tf.cli.score',
}


@dataclass
class Block:
    doc: str  # path relative to the repo
    line: int  # 1-based line of the opening fence
    lang: str
    code: str  # as run: the block's text after the replace markers
    skip: str | None  # the reason, when marked skip
    setup: str  # code run before the block (same language)
    replace: list  # (old, new) pairs of the replace markers

    @property
    def id(self) -> str:
        return f'{self.doc}:{self.line}'

    @property
    def kind(self) -> str:
        return 'python' if self.lang in PYTHON else 'shell' if self.lang in SHELL else 'text'


def parse_markers(before: str, where: str) -> tuple[str | None, str, list]:
    """The docs-test markers at the end of ``before`` (the text up to a fence): the skip
    reason, the setup code and the (old, new) replacements."""
    skip, setup, replace = None, '', []
    before = before.rstrip()
    while before.endswith('-->'):
        k = before.rfind('<!--')
        m = MARKER.fullmatch(before[k:])
        if k < 0 or not m:
            break
        directive = m.group(1).strip()
        before = before[:k].rstrip()
        if directive.startswith('skip'):
            r = re.fullmatch(r'skip\s*\((.*)\)', directive, re.S)
            if not r or not r.group(1).strip():
                raise ValueError(f'{where}: a skip marker needs a reason: skip (why)')
            skip = ' '.join(r.group(1).split())
        elif directive.startswith('replace'):
            r = re.fullmatch(r'replace\s*\((.+?)\s=>\s(.+)\)', directive, re.S)
            if not r:
                raise ValueError(f'{where}: write a replacement as replace (old => new)')
            replace.insert(0, (r.group(1).strip(), r.group(2).strip()))
        elif directive.startswith('setup'):
            setup = textwrap.dedent(directive[len('setup') :].strip('\n')) + '\n' + setup
        else:
            raise ValueError(f'{where}: unknown docs-test marker {directive!r}')
    return skip, setup, replace


def doc_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of one Markdown file, with their markers."""
    rel = path.relative_to(REPO).as_posix()
    lines = path.read_text().splitlines()
    out, i, used = [], 0, 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].strip() != '```':
            j += 1
        if j == len(lines):
            raise ValueError(f'{rel}:{i + 1}: code block never closed')
        code = textwrap.dedent('\n'.join(lines[i + 1 : j])) + '\n'
        skip, setup, replace = parse_markers('\n'.join(lines[:i]), f'{rel}:{i + 1}')
        used += (skip is not None) + bool(setup.strip()) + len(replace)
        for old, new in replace:
            if old not in code:
                raise ValueError(
                    f'{rel}:{i + 1}: {old!r} (of a replace marker) is not in the block'
                )
            code = code.replace(old, new)
        out.append(Block(rel, i + 1, m.group(2).lower(), code, skip, setup, replace))
        i = j + 1
    n_markers = len(MARKER.findall(path.read_text()))
    if n_markers > used:
        raise ValueError(f'{rel}: {n_markers - used} docs-test marker(s) not right before a block')
    return out


def all_blocks() -> list[Block]:
    return [b for path in DOCS for b in doc_blocks(path)]


BLOCKS = all_blocks()
PYTHON_DOCS = sorted({b.doc for b in BLOCKS if b.kind == 'python' and b.skip is None})
SHELL_BLOCKS = [b for b in BLOCKS if b.kind == 'shell']
RUN_SHELL = [b for b in SHELL_BLOCKS if b.skip is None]


# ---- the rules -----------------------------------------------------------------------------


def test_every_block_is_run_or_skipped_with_a_reason():
    """Markers parse (a reason on every skip, no stray marker); commands and code are tagged;
    a reason naming a test file names one that exists; the split is as intended."""
    problems = []
    for b in BLOCKS:
        if b.kind == 'text':
            looks_like = re.search(r'^(\$ |python |import |from \w+ import )', b.code, re.M)
            if looks_like and b.lang != 'text':
                problems.append(f'{b.id}: untagged block of commands or code (tag it)')
            if b.skip is not None or b.setup.strip() or b.replace:
                problems.append(f'{b.id}: a docs-test marker on a block that is never run')
        for name in re.findall(r'tests/\w+\.py', b.skip or ''):
            if not (REPO / name).is_file():
                problems.append(f'{b.id}: the skip reason names {name}, which does not exist')
    assert not problems, '\n'.join(problems)
    n_run = sum(b.kind != 'text' and b.skip is None for b in BLOCKS)
    assert n_run >= 10 and RUN_SHELL and PYTHON_DOCS, (n_run, RUN_SHELL, PYTHON_DOCS)


def shell_commands(block: Block) -> list[list[str]]:
    """The simple commands of a shell block as argv lists, ``$VAR`` of the block's own
    assignments expanded, leading ``VAR=value`` and launcher words dropped."""
    text = block.code
    if block.lang == 'console':
        text = '\n'.join(line[2:] for line in text.splitlines() if line.startswith('$ '))
    text = text.replace('\\\n', ' ')
    env, out = {}, []
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=';&|')
        lexer.whitespace_split = True
        lexer.commenters = '#'
        argv = []
        for tok in [*lexer, ';']:
            if tok and set(tok) <= set(';&|'):
                if len(argv) == 1 and re.fullmatch(r'\w+=.*', argv[0]):
                    k, v = argv[0].split('=', 1)
                    env[k] = v
                elif argv:
                    out.append(argv)
                argv = []
                continue
            argv.append(re.sub(r'\$(\w+)', lambda m: env.get(m.group(1), m.group(0)), tok))
    return out


def python_scripts(block: Block):
    """``(script, argv)`` for each ``python X.py args`` in a shell block (also after horovodrun
    / mpirun / VAR=value prefixes); ``...`` (flags left to the reader) is dropped."""
    for argv in shell_commands(block):
        for i, tok in enumerate(argv[:-1]):
            if tok == 'python' and argv[i + 1].endswith('.py'):
                yield argv[i + 1], [a for a in argv[i + 2 :] if a != '...']
                break


CHECK_FLAGS = r"""
import importlib, json, sys
bad = []
for where, module, argv in json.load(sys.stdin):
    parser = importlib.import_module(module).build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as e:
        if e.code:
            bad.append(f'{where}: {module} rejects {argv}')
print('\n'.join(bad))
sys.exit(1 if bad else 0)
"""


def test_every_documented_command_line_parses():
    """Run or skipped, each documented ``python script.py ...`` names a script that exists, and
    the five entry points accept the flags as written (their own argparse parsers)."""
    missing, calls = [], []
    for b in SHELL_BLOCKS:
        for script, argv in python_scripts(b):
            if not (REPO / script).is_file():
                missing.append(f'{b.id}: {script} does not exist')
            elif script in CLI_SCRIPTS:
                calls.append((b.id, CLI_SCRIPTS[script], argv))
    assert not missing, '\n'.join(missing)
    assert len(calls) > 20, calls
    r = subprocess.run(
        [sys.executable, '-c', CHECK_FLAGS],
        input=json.dumps(calls),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=child_env(),
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]


# ---- running the blocks --------------------------------------------------------------------


def child_env(**extra) -> dict:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(REPO), env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    env['PATH'] = os.pathsep.join([str(Path(sys.executable).parent), env.get('PATH', '')])
    env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    env['MPLBACKEND'] = 'Agg'
    env.update(extra)
    return env


def git_status() -> str:
    r = subprocess.run(['git', 'status', '--porcelain'], cwd=REPO, capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ''


RUN_OUTPUTS = {'runs', 'logs'}


@pytest.fixture
def sandbox(tmp_path, shared_data):
    """``tmp_path/repo``: the repository's top-level entries as symlinks, except the folders runs
    write to (``runs/``, ``logs/``: git-ignored, absent from a fresh clone; a checkout's own long
    runs must neither be seen nor written by the examples); ``../shared``."""
    root = tmp_path / 'repo'
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name in RUN_OUTPUTS:
            continue
        if not entry.name.startswith('.') and entry.name != '__pycache__':
            (root / entry.name).symlink_to(entry)
    (tmp_path / 'shared').symlink_to(shared_data.parent)
    before = git_status()
    yield root
    assert git_status() == before, 'a docs example wrote into the repository'


RUN_PYTHON = r"""
import doctest, json, re, sys, time, traceback
ns = {'__name__': '__main__'}


def run(code, doc, line):
    exec(compile('\n' * line + code, doc, 'exec'), ns)


def run_doctest(code, doc, line):
    for ex in doctest.DocTestParser().get_examples(code):
        at = line + ex.lineno
        if ex.want.strip():
            got = repr(eval(compile('\n' * at + ex.source, doc, 'eval'), ns))
            want = ' '.join(ex.want.split())
            assert ' '.join(got.split()) == want, f'{doc}:{at + 1}: got {got}, want {want}'
        else:
            run(ex.source, doc, at)


for b in json.load(open(sys.argv[1])):
    t = time.time()
    where = f"{b['doc']}:{b['line']}"
    try:
        if b['setup'].strip():
            exec(compile(b['setup'], f'{where} (docs-test setup)', 'exec'), ns)
        if re.match(r'\s*>>> ', b['code']):
            run_doctest(b['code'], b['doc'], b['line'])
        else:
            run(b['code'], b['doc'], b['line'])
    except BaseException:
        traceback.print_exc()
        print(f'FAILED: the block at {where}', flush=True)
        sys.exit(1)
    print(f'ran {where} in {time.time() - t:.1f}s', flush=True)
"""


def run_child(argv, cwd, timeout, env) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f'timed out after {timeout}s (mark it skip with a reason?)\n{e.stdout}')
    print(r.stdout)
    return r


@pytest.mark.parametrize('doc', PYTHON_DOCS)
def test_python_blocks_run(doc, sandbox, logdir):
    blocks = [b for b in BLOCKS if b.doc == doc and b.kind == 'python' and b.skip is None]
    spec = sandbox.parent / 'blocks.json'
    spec.write_text(
        json.dumps([dict(doc=b.doc, line=b.line, code=b.code, setup=b.setup) for b in blocks])
    )
    driver = sandbox.parent / 'run_blocks.py'
    driver.write_text(RUN_PYTHON)
    env = child_env(TINY_MODEL=str(logdir))
    r = run_child([sys.executable, str(driver), str(spec)], sandbox, PYTHON_TIMEOUT, env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]


@pytest.mark.parametrize('block', RUN_SHELL, ids=[b.id for b in RUN_SHELL])
def test_shell_block_runs(block, sandbox, logdir):
    code = block.code
    if block.lang == 'console':
        code = '\n'.join(line[2:] for line in code.splitlines() if line.startswith('$ '))
    script = f'set -e -o pipefail\n{block.setup}\n{code}'
    env = child_env(TINY_MODEL=str(logdir))
    r = run_child(['bash', '-c', script], sandbox, SHELL_TIMEOUT, env)
    assert r.returncode == 0, f'{block.id}\n{block.code}\n{r.stdout[-3000:]}{r.stderr[-6000:]}'
