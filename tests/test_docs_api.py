"""docs/API.md's layer table states each layer's constructor exactly as the code defines it."""

import ast
import inspect
import re
from pathlib import Path

import glow_tf

API = Path(__file__).resolve().parents[1] / 'docs' / 'API.md'


def test_layer_table_matches_constructor_signatures():
    rows = re.findall(r'^\| `(\w+)\(([^)]*)\)` \|', API.read_text(), re.M)
    documented = {name: args for name, args in rows if hasattr(glow_tf, name)}
    layers = [
        'ActNorm',
        'InvertibleConv1x1',
        'ChannelPermutation',
        'Coupling',
        'FlowStep',
        'Split',
        'TopPrior',
        'Squeeze',
    ]
    assert sorted(documented) == sorted(layers)
    for name in layers:
        params = [
            p
            for p in inspect.signature(getattr(glow_tf, name).__init__).parameters.values()
            if p.name != 'self' and p.kind is not p.VAR_KEYWORD
        ]
        code = {p.name: p.default for p in params}
        doc = {}
        for arg in documented[name].split(', '):
            key, value = arg.split('=')
            doc[key] = ast.literal_eval(value)
        assert doc == code and list(doc) == list(code), name


def _doc_imports():
    """(file, module, name) of every `from glow_tf... import name` in the docs' Python blocks."""
    root = API.parents[1]
    for path in sorted((root / 'docs').glob('*.md')) + [root / 'README.md']:
        for block in re.findall(r'```python\n(.*?)```', path.read_text(), re.S):
            try:
                nodes = list(ast.walk(ast.parse(block)))
            except SyntaxError:  # a fragment: read its import lines one by one
                lines = [ln for ln in block.splitlines() if ln.startswith('from glow_tf')]
                nodes = [n for ln in lines if '(' not in ln for n in ast.walk(ast.parse(ln))]
            for node in nodes:
                if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('glow_tf'):
                    for alias in node.names:
                        yield path.name, node.module, alias.name


def test_names_the_docs_import_exist():
    """A module split or a renamed helper updates the docs' examples too."""
    import importlib

    found = list(_doc_imports())
    assert len(found) > 10
    missing = []
    for doc, module, name in found:
        mod = importlib.import_module(module)
        if not hasattr(mod, name):
            try:
                importlib.import_module(f'{module}.{name}')
            except ImportError:
                missing.append(f'{doc}: from {module} import {name}')
    assert not missing, missing
