"""Export a trained Glow as a self-contained TensorFlow SavedModel.

    from glow_tf.tools.export import export_saved_model
    export_saved_model(model, 'export_dir', n_bits_x=8)
    # or from the command line: sample.py --model LOGDIR --export DIR

The SavedModel needs no glow_tf code to run. In any TensorFlow 2 process:

    m = tf.saved_model.load('export_dir')
    m.sample(n=tf.constant(16), temperature=tf.constant(0.7),
             seed=tf.constant(0, tf.int64))['images']   # uint8 [16, H, W, C]
    m.encode(images=uint8 [B, H, W, C])['latents']      # float32 [B, H, W, C], packed latents
    m.decode(latents=float32 [B, H, W, C])['images']    # uint8 [B, H, W, C]
    m.log_likelihood(images=uint8 [B, H, W, C])         # {'bits_per_dim': [B], 'log_prob': [B]}
    json.loads(m.config_json.numpy())                   # image_shape, latent_shapes, n_bits_x, ...

`log_likelihood` scores images without glow_tf: the discrete log-likelihood of each image in
bits per sub-pixel, evaluated at the centre of every pixel's quantisation bin (the
dequantisation draw fixed at u = 1/2, so the score is deterministic),

    bits_per_dim(x) = −(log p(x_c) − D · log(n_bins)) / (D · log 2),
    x_c = x/n_bins − 1/2 + 1/(2 n_bins)

with D = H·W·C; `log_prob` is log p(x_c) in nats (a density over [−1/2, 1/2]^D). It equals
`Glow.objective(x, noise=1/2)` and differs from training's noisy estimate by the noise only.

The same functions are the serving signatures `sample`, `encode`, `decode`, `log_likelihood`
(`m.signatures['sample'](n=..., temperature=..., seed=...)`). Class-conditional models take an
extra `y` (int32 [B]; for `sample`, [n]) in every signature.

Semantics are those of `glow_tf.tools.trained` and `glow_tf.model.latents`: `sample(n, T, seed)`
gives exactly the images `sample.py --seed seed --temperature T` gives for the same model (same
counter-based latents);
`encode` maps each pixel to its bin centre (no noise) so `decode(encode(x)) == x`; latents are
the per-level ε packed into the image shape (`glow_tf.model.latents.pack_latents`; unpack with
`latent_shapes` from `config_json`: flatten each example, split into consecutive chunks of
prod(shape_l) values, reshape).
"""

import json
import os
from pathlib import Path

import tensorflow as tf

from glow_tf.fileio import atomic_write_bytes
from glow_tf.model.latents import block_latents, pack_latents
from glow_tf.model.preprocessing import nats_to_bits_per_dim, preprocess
from glow_tf.tools.trained import BIN_CENTRE, decode_to_uint8, encode_bin_centres
from glow_tf.variables import tf_variables

EXPORT_META = 'glow_export.json'  # a readable copy of config_json next to saved_model.pb


def build_export_module(model, n_bits_x=8, extra_meta=None):
    """A tf.Module with `sample`, `encode`, `decode` tf.functions (fixed input signatures), the
    model's tf.Variables and a `config_json` string variable. See the module docstring."""
    image_shape = tuple(int(d) for d in model.image_shape)
    latent_shapes = tuple(tuple(int(d) for d in s) for s in model.latent_shapes)
    n_classes, n_bits_x = int(model.n_classes), int(n_bits_x)
    meta = {
        'format': 'glow_tf.tools.export/1',
        'image_shape': list(image_shape),
        'latent_shapes': [list(s) for s in latent_shapes],
        'n_bits_x': n_bits_x,
        'n_classes': n_classes,
        'model_config': model.get_config(),
        'latents': 'per-level eps packed into the image shape (glow_tf.model.latents.pack_latents)',
        'signatures': {
            'sample': ['n', 'temperature', 'seed'] + (['y'] if n_classes else []),
            'encode': ['images'] + (['y'] if n_classes else []),
            'decode': ['latents'] + (['y'] if n_classes else []),
            'log_likelihood': ['images'] + (['y'] if n_classes else []),
        },
    }
    meta.update(extra_meta or {})

    module = tf.Module(name='glow_export')
    # Explicitly tracked: the Keras model itself is only captured by the closures below.
    module.model_variables = tf_variables(model.variables)
    module.config_json = tf.Variable(
        json.dumps(meta, sort_keys=True), trainable=False, name='config_json'
    )

    y_spec = [tf.TensorSpec([None], tf.int32, name='y')] if n_classes else []
    img_spec = tf.TensorSpec([None, *image_shape], tf.uint8, name='images')
    lat_spec = tf.TensorSpec([None, *image_shape], tf.float32, name='latents')

    def _decode(latents, y):
        return decode_to_uint8(model, latents, n_bits_x, *y)

    n_spec = [
        tf.TensorSpec([], tf.int32, name='n'),
        tf.TensorSpec([], tf.float32, name='temperature'),
        tf.TensorSpec([], tf.int64, name='seed'),
    ]

    def _sample(n, temperature, seed, y):
        eps = block_latents(latent_shapes, seed, 0, n, temperature)
        return {'images': _decode(pack_latents(eps, image_shape), y)}

    def _encode(images, y):
        return {'latents': encode_bin_centres(model, images, n_bits_x, *y)}

    def _log_likelihood(images, y):
        x = preprocess(images, n_bits_x, noise=BIN_CENTRE)
        log_prob = model.log_prob(x, *y)
        return {
            'bits_per_dim': nats_to_bits_per_dim(log_prob, model.n_dims, n_bits_x),
            'log_prob': log_prob,
        }

    # Explicit parameter lists (not *args) so the restored functions take keyword arguments.
    if n_classes:

        @tf.function(input_signature=n_spec + y_spec)
        def sample(n, temperature, seed, y):
            return _sample(n, temperature, seed, [y])

        @tf.function(input_signature=[img_spec] + y_spec)
        def encode(images, y):
            return _encode(images, [y])

        @tf.function(input_signature=[lat_spec] + y_spec)
        def decode(latents, y):
            return {'images': _decode(latents, [y])}

        @tf.function(input_signature=[img_spec] + y_spec)
        def log_likelihood(images, y):
            return _log_likelihood(images, [y])
    else:

        @tf.function(input_signature=n_spec)
        def sample(n, temperature, seed):
            return _sample(n, temperature, seed, [])

        @tf.function(input_signature=[img_spec])
        def encode(images):
            return _encode(images, [])

        @tf.function(input_signature=[lat_spec])
        def decode(latents):
            return {'images': _decode(latents, [])}

        @tf.function(input_signature=[img_spec])
        def log_likelihood(images):
            return _log_likelihood(images, [])

    module.sample, module.encode, module.decode = sample, encode, decode
    module.log_likelihood = log_likelihood
    return module, meta


def export_saved_model(model, export_dir, n_bits_x=8, extra_meta=None):
    """Write `model` as a SavedModel to export_dir (plus a readable glow_export.json).
    Returns the dir."""
    module, meta = build_export_module(model, n_bits_x, extra_meta)
    export_dir = os.path.abspath(os.path.expanduser(export_dir))
    signatures = {
        'sample': module.sample.get_concrete_function(),
        'encode': module.encode.get_concrete_function(),
        'decode': module.decode.get_concrete_function(),
        'log_likelihood': module.log_likelihood.get_concrete_function(),
    }
    tf.saved_model.save(module, export_dir, signatures=signatures)
    text = json.dumps(meta, indent=2, sort_keys=True) + '\n'
    atomic_write_bytes(Path(export_dir) / EXPORT_META, lambda f: f.write(text.encode()))
    return export_dir
