"""A trained model's encode / decode with its weights compiled in as constants (what the tools
load: `load_trained_model(frozen_weights=True)`) against reading them as variables at every call.

    python bench/frozen_weights.py                       # the shipped face model
    python bench/frozen_weights.py --model runs/mine --batches 1,8 --iters 30

For one trained model (a log dir or a packaged editor model), loaded both ways in fp32 (the
editor's precision): the first call of each compiled decode (trace + graph optimisation, where
the constants are folded), then decode and encode at each --batches size, both loadings called in
turn in every round with the fp32 conv reference of `bench/bench_glow.py` (as in
`bench/inference_precision.py`, whose timing this uses), and how far the two agree (decoded pixels
equal, largest latent difference, held-out test bits/dim). Prints the CPU's vector units, a table
and one `JSON ` line.
"""

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from bench.common import cpu_flags_line, dumps  # noqa: E402
from bench.inference_precision import (  # noqa: E402
    held_out_images,
    model_and_timing_parser,
    print_speed_table,
    speed,
)

LOADINGS = {'reads': False, 'frozen': True}  # name -> frozen_weights


def load_flows(model, batch):
    from glow_tf.editor.engine import load_editor_flow

    return {
        name: load_editor_flow(model, batch_size=batch, frozen_weights=frozen)[0]
        for name, frozen in LOADINGS.items()
    }


def first_decode_s(flows):
    """Seconds of each flow's first decode (one image): tracing, optimising, running."""
    out = {}
    for name, flow in flows.items():
        latents = flow.latents(1, 0.7, seed=2)
        start = time.perf_counter()
        flow.decode(latents)
        out[name] = time.perf_counter() - start
    return out


def agreement(flows, images, n_samples):
    import numpy as np

    from glow_tf.tools.scoring import Scorer

    reads, frozen = flows['reads'], flows['frozen']
    latents = reads.latents(n_samples, 0.7, seed=0)
    decoded = {name: f.decode(latents) for name, f in flows.items()}
    encoded = {name: f.encode(decoded['reads']) for name, f in flows.items()}
    bits = {n: Scorer(f, batch_size=50).score(images, progress=False)[0] for n, f in flows.items()}
    return {
        'samples': n_samples,
        'decoded_pixels_differing': int((decoded['reads'] != decoded['frozen']).sum()),
        'latent_max_abs_difference': float(np.abs(encoded['reads'] - encoded['frozen']).max()),
        'test_images': len(images),
        'bits_per_dim': {n: float(b.mean()) for n, b in bits.items()},
        'frozen_flag': bool(frozen.frozen_weights),
    }


def main(argv=None):
    args = model_and_timing_parser(__doc__, iters=20, n_test=300, n_samples=16).parse_args(argv)
    batches = [int(b) for b in args.batches.split(',')]

    flows = load_flows(args.model, max(batches))
    result = {'model': args.model, 'first_decode_s': first_decode_s(flows)}
    images = held_out_images(args.problem, flows['reads'].image_shape[0], args.n_test)
    result['agreement'] = agreement(flows, images, args.n_samples)
    result['speed'] = speed(flows, batches, args.iters)

    print(cpu_flags_line())
    a, first = result['agreement'], result['first_decode_s']
    print(
        f"{args.model}, fp32: first decode {first['reads']:.2f} s reading the variables, "
        f"{first['frozen']:.2f} s frozen. {a['samples']} samples at T = 0.7: "
        f"{a['decoded_pixels_differing']} decoded values differ; re-encoded, the largest latent "
        f"difference is {a['latent_max_abs_difference']:.1e}. Test bits/dim ({a['test_images']} "
        f"held-out): {a['bits_per_dim']['reads']:.5f} / {a['bits_per_dim']['frozen']:.5f}.\n"
    )
    print_speed_table(result['speed'], tuple(LOADINGS))
    print('JSON ' + dumps(result))


if __name__ == '__main__':
    main()
