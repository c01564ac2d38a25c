"""The package layout is the architecture: imports run one way (docs/architecture.md).

Each module's `glow_tf` imports (top-level and lazy ones inside functions alike, read from the
source with `ast`) are checked against the layer rules below, so a new import that points up the
stack -- a flow layer importing the model, a tool importing training -- fails here with the file,
the line and the rule.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'glow_tf'

# layer of a module (by its dotted name under glow_tf) -> the layers it may import from
UTILITIES = {'cachedir', 'errors', 'fileio', 'internals', 'progress', 'variables'}
LAYERS = ['utilities', 'data', 'flows', 'nets', 'model', 'runs', 'tools', 'training', 'editor']
RULES = {
    # the package face (glow_tf/__init__.py) re-exports every layer's public names; inside the
    # package only the command line may import it (a layer importing `glow_tf` would import
    # every layer above it)
    'face': set(LAYERS),
    'utilities': set(),
    'data': {'utilities', 'data'},
    'flows': {'utilities', 'flows'},  # networks are injected (flows/networks.py)
    'nets': {'utilities', 'nets', 'flows.base', 'flows.actnorm', 'flows.terms'},
    'model': {'utilities', 'flows', 'nets', 'model'},
    'runs': {'utilities', 'flows', 'nets', 'model', 'runs'},
    'tools': {'utilities', 'data', 'flows', 'nets', 'model', 'runs', 'tools'},
    'training': {'utilities', 'data', 'flows', 'nets', 'model', 'runs', 'tools', 'training'},
    'editor': {'utilities', 'data', 'flows', 'nets', 'model', 'runs', 'tools', 'editor'},
    'cli': {
        'utilities',
        'data',
        'flows',
        'nets',
        'model',
        'runs',
        'tools',
        'training',
        'editor',
        'cli',
        'face',
    },
}


def layer_of(dotted):
    """'glow_tf.flows.actnorm' -> 'flows' (or 'flows.actnorm' when a rule names the module)."""
    parts = dotted.split('.')
    if len(parts) == 1:
        return 'face'
    if parts[1] in UTILITIES:
        return 'utilities'
    return parts[1]


def allowed(importer, target):
    rules = RULES[layer_of(importer)]
    parts = target.split('.')
    if layer_of(target) in ('utilities', 'face'):
        return layer_of(target) in rules
    return parts[1] in rules or '.'.join(parts[1:3]) in rules


def glow_imports(path):
    """(line, imported module) for every `glow_tf...` import in a file."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith('glow_tf'):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                yield node.lineno, '<relative>'
            elif node.module and node.module.startswith('glow_tf'):
                if node.module == 'glow_tf' or node.module.count('.') == 1:
                    # `from glow_tf.flows import actnorm`: the imported names are modules
                    for alias in node.names:
                        yield node.lineno, f'{node.module}.{alias.name}'
                else:
                    yield node.lineno, node.module


def modules():
    for path in sorted(PACKAGE.rglob('*.py')):
        rel = path.relative_to(PACKAGE.parent).with_suffix('')
        name = '.'.join(rel.parts).removesuffix('.__init__')
        yield name, path


def test_every_module_has_a_layer():
    for name, _ in modules():
        assert layer_of(name) in RULES, f"{name}: not in a layer of tests/test_layout.py RULES"


@pytest.mark.parametrize('name,path', list(modules()), ids=lambda v: str(v))
def test_imports_run_one_way(name, path):
    if name == 'glow_tf':
        return  # the package face re-exports the public names of every layer
    bad = []
    for line, target in glow_imports(path):
        if target == '<relative>':
            bad.append(f"{path}:{line}: relative import (the house style is absolute imports)")
        elif not allowed(name, target):
            bad.append(
                f"{path}:{line}: {name} ({layer_of(name)}) imports {target} "
                f"({layer_of(target)}); {layer_of(name)} may import "
                f"{sorted(RULES[layer_of(name)])}"
            )
    assert not bad, '\n'.join(bad)


def test_a_violation_is_caught(tmp_path):
    """The checker itself: a flow layer importing the trainer is reported."""
    fake = tmp_path / 'bad.py'
    fake.write_text('def f():\n    from glow_tf.training.trainer import Trainer\n')
    found = list(glow_imports(fake))
    assert found == [(2, 'glow_tf.training.trainer')]
    assert not allowed('glow_tf.flows.actnorm', 'glow_tf.training.trainer')
    assert not allowed('glow_tf.tools.sampling', 'glow_tf.training.checkpoint')
    assert not allowed('glow_tf.nets.conv', 'glow_tf.flows.coupling')
    assert allowed('glow_tf.nets.coupling_net', 'glow_tf.flows.actnorm')
    assert not allowed('glow_tf.flows.coupling', 'glow_tf.nets.coupling_net')
    assert not allowed('glow_tf.training.trainer', 'glow_tf')  # the face imports every layer
    assert allowed('glow_tf.cli.train', 'glow_tf')


def test_public_constructors_document_their_arguments():
    """Every public class of the package whose constructor takes arguments has an `Args:`
    section in its docstring (the house style of TFP's and Keras's layers)."""
    missing = []
    for name, path in modules():
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.ClassDef) or node.name.startswith('_'):
                continue
            inits = [
                f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == '__init__'
            ]
            if not inits:
                continue
            args = inits[0].args
            if (args.args[1:] or args.kwonlyargs) and 'Args:' not in (
                ast.get_docstring(node) or ''
            ):
                missing.append(f'{name}.{node.name}')
    assert not missing, f"public classes without an Args: section: {missing}"


PRIVATE_APIS = ('keras.src', 'tensorflow.python')
PRIVATE_ADAPTER = 'glow_tf.internals'


def private_imports(path):
    """(line, module) for every import of a Keras / TensorFlow internal module in a file."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            if name.startswith(PRIVATE_APIS):
                yield node.lineno, name


def test_only_the_adapter_module_touches_keras_and_tensorflow_internals():
    """`glow_tf.internals` is the one module that may import `keras.src` or
    `tensorflow.python` (its docstring says what for and why); every other module uses the
    public APIs, so a Keras or TensorFlow upgrade has one place to break."""
    offenders = [
        f'{name}:{line} imports {module}'
        for name, path in modules()
        if name != PRIVATE_ADAPTER
        for line, module in private_imports(path)
    ]
    assert not offenders, offenders
    adapter = dict(modules())[PRIVATE_ADAPTER]
    assert {m for _, m in private_imports(adapter)} == {
        'keras.src.trainers.data_adapters',
        'tensorflow.python.eager',
    }
