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
