"""Every layer (flows, nets, model, runs, training, tools, the editor, the command line) uses
only public names of other glow_tf modules: no `from glow_tf.x import _helper`, no
`module._helper` on an imported glow_tf module."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'glow_tf'
CHECKED = sorted(
    [
        p
        for d in ('cli', 'tools', 'runs', 'editor', 'training', 'model', 'flows', 'nets')
        for p in (PACKAGE / d).glob('*.py')
    ]
    + [PACKAGE / 'errors.py']
)


def private_uses(path):
    """(line, text) of every private name of another glow_tf module that `path` uses."""
    tree = ast.parse(path.read_text(), str(path))
    modules = set()  # local names bound to glow_tf modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('glow_tf'):
            for alias in node.names:
                if alias.name.startswith('_'):
                    yield node.lineno, f'from {node.module} import {alias.name}'
                elif node.module.count('.') <= 1:  # `from glow_tf.tools import manipulation`
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith('glow_tf') and alias.asname:
                    modules.add(alias.asname)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith('_')
        ):
            yield node.lineno, f'{node.value.id}.{node.attr}'


def test_the_checked_files_exist():
    names = {p.relative_to(PACKAGE).as_posix() for p in CHECKED}
    assert {'cli/train.py', 'cli/sample.py', 'cli/manipulate.py', 'tools/trained.py'} <= names


@pytest.mark.parametrize('path', CHECKED, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_only_public_names_of_other_modules(path):
    found = [f'{path.relative_to(PACKAGE)}:{line}: {text}' for line, text in private_uses(path)]
    assert not found, found


def test_the_check_finds_private_uses(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text(
        'from glow_tf.tools.images import _hidden\n'
        'from glow_tf.tools import manipulation as M\n'
        'M._shape_text([])\n'
    )
    assert [line for line, _ in private_uses(bad)] == [1, 3]
