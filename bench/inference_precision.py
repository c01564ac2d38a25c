"""A trained model's inference in fp32 and in its `--precision auto` (bf16 where the hardware
computes bfloat16 natively): what sample.py, the editor and manipulate.py would gain and lose.

    python bench/inference_precision.py                          # the shipped face model
    python bench/inference_precision.py --model runs/mine --iters 20 --batches 1,16,64

For one trained model (a log dir or a packaged editor model), loaded twice:

  speed    decode (latents -> uint8 images) and encode (images -> latents) at each --batches
           size, both precisions called in turn in every round (same machine load); the
           fp32 conv reference of `bench/bench_glow.py` (1x1 and 3x3 convolutions on the
           model's level-0 hidden shape) is timed in the same rounds, so a decode's FLOP rate
           is also given as a share of it ('% conv', one decode = one forward pass's FLOPs).
  accuracy test bits/dim of the held-out split (bin-centre encoding, no noise: the same for
           both), the largest per-image difference, and how far the same latents decode apart
           (pixels of 255 that differ, mean |difference|).

'auto' resolves to fp32 on a machine without bfloat16 units; then both columns are fp32 and the
ratios ~1. Prints the CPU's vector units, a table and one `JSON ` line.
"""

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from bench.common import (  # noqa: E402
    ConvReference,
    cpu_flags_line,
    dumps,
    forward_flops_per_image,
    interleaved,
    median,
)

PRECISIONS = ('fp32', 'auto')


def load_flows(model, batch):
    """precision -> the model loaded in it, as the editor loads it (a packaged editor model's one
    set of weights, or a log dir's better weights)."""
    from glow_tf.editor.engine import load_editor_flow

    return {p: load_editor_flow(model, batch_size=batch, precision=p)[0] for p in PRECISIONS}


def held_out_images(problem, image_size, limit):
    from glow_tf.tools.scoring import load_image_set

    images, _ = load_image_set(f'{problem}:test', image_size, limit=limit)
    return images


def accuracy(flows, images, temperature, n_samples):
    """Test bits/dim per precision and how far the two decode the same latents apart."""
    import numpy as np

    from glow_tf.tools.scoring import Scorer

    bits = {p: Scorer(f, batch_size=50).score(images, progress=False)[0] for p, f in flows.items()}
    latents = flows['fp32'].latents(n_samples, temperature, seed=0)
    decoded = {p: f.decode(latents).astype(np.int64) for p, f in flows.items()}
    difference = np.abs(decoded['auto'] - decoded['fp32'])
    return {
        'test_images': len(images),
        'bits_per_dim': {p: float(b.mean()) for p, b in bits.items()},
        'bits_per_dim_max_abs_difference': float(np.abs(bits['auto'] - bits['fp32']).max()),
        'samples': n_samples,
        'temperature': temperature,
        'sample_values_differing': float((difference > 0).mean()),
        'sample_mean_abs_difference': float(difference.mean()),
        'sample_max_abs_difference': int(difference.max()),
    }


def speed(flows, batches, iters):
    """Per batch size: decode / encode ms and '% conv' of each of the two `flows` (name -> flow,
    the same model), and the speed-up of the second over the first, timed interleaved."""
    base, other = flows
    model = flows[base].model
    height, width = model.image_shape[0] // 2, model.image_shape[1] // 2
    hidden = int(model.flow_steps[0].coupling.nn.width)
    rows = {}
    for batch in batches:
        conv = ConvReference(batch, height, width, hidden)
        latents = flows[base].latents(batch, 0.7, seed=1)
        images = flows[base].decode(latents)
        fns = dict(conv.fns())
        for p, f in flows.items():
            f.batch_size = batch
            fns[f'decode {p}'] = lambda f=f: f.decode(latents)
            fns[f'encode {p}'] = lambda f=f: f.encode(images)
        times = interleaved(fns, iters, warmup=2)  # the warm-up calls trace every function
        flops = forward_flops_per_image(model) * batch
        row = {}
        for what in ('decode', 'encode'):
            for p in flows:
                t = times[f'{what} {p}']
                share = [
                    flops / s / 1e9 / max(conv.gflops(k, times[k][i]) for k in conv.shapes)
                    for i, s in enumerate(t)
                ]
                row[f'{what}_ms_{p}'] = 1000 * median(t)
                row[f'{what}_pct_conv_{p}'] = 100 * median(share)
            pairs = zip(times[f'{what} {base}'], times[f'{what} {other}'])
            row[f'{what}_speedup'] = median([a / b for a, b in pairs])
        row['conv_reference_gflops'] = median(
            [max(conv.gflops(k, times[k][i]) for k in conv.shapes) for i in range(iters)]
        )
        rows[batch] = row
    return rows


def model_and_timing_parser(doc, iters, n_test, n_samples):
    """The flags of this bench and bench/frozen_weights.py: the model, the held-out split scored,
    the batch sizes and rounds timed, the samples compared."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--model', default=str(REPO / 'models' / 'celeba64_5bit'))
    p.add_argument('--problem', default='celeba', help="whose held-out split is scored")
    p.add_argument('--batches', default='1,16,64', help="decode / encode batch sizes")
    p.add_argument('--iters', type=int, default=iters, help="timed rounds per batch size")
    p.add_argument('--n_test', type=int, default=n_test, help="held-out images scored")
    p.add_argument('--n_samples', type=int, default=n_samples)
    return p


def print_speed_table(rows, names):
    """The markdown table of `speed`'s rows for its two flows `names` (first, second)."""
    a, b = names
    print(
        f'| batch | decode ms {a} / {b} | decode speed-up | decode % conv {a} / {b} '
        f'| encode ms {a} / {b} | encode speed-up | conv reference GFLOP/s |'
    )
    print('|---|---|---|---|---|---|---|')
    for batch, r in rows.items():
        print(
            f"| {batch} | {r[f'decode_ms_{a}']:.1f} / {r[f'decode_ms_{b}']:.1f} | "
            f"{r['decode_speedup']:.2f}x | {r[f'decode_pct_conv_{a}']:.0f} / "
            f"{r[f'decode_pct_conv_{b}']:.0f} | {r[f'encode_ms_{a}']:.1f} / "
            f"{r[f'encode_ms_{b}']:.1f} | {r['encode_speedup']:.2f}x | "
            f"{r['conv_reference_gflops']:.0f} |"
        )


def main(argv=None):
    p = model_and_timing_parser(__doc__, iters=15, n_test=900, n_samples=64)
    p.add_argument('--temperature', type=float, default=0.7)
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batches.split(',')]

    flows = load_flows(args.model, max(batches))
    auto = flows['auto'].precision
    images = held_out_images(args.problem, flows['fp32'].image_shape[0], args.n_test)
    result = {'model': args.model, 'auto_resolves_to': auto}
    result['accuracy'] = accuracy(flows, images, args.temperature, args.n_samples)
    result['speed'] = speed(flows, batches, args.iters)

    print(cpu_flags_line())
    acc = result['accuracy']
    print(
        f"{args.model}: 'auto' is {auto} here. Test bits/dim ({acc['test_images']} held-out, "
        f"bin centres): fp32 {acc['bits_per_dim']['fp32']:.5f}, auto "
        f"{acc['bits_per_dim']['auto']:.5f} (largest per-image difference "
        f"{acc['bits_per_dim_max_abs_difference']:.5f}). {acc['samples']} samples at T = "
        f"{acc['temperature']:g}, same latents: {100 * acc['sample_values_differing']:.1f} % of "
        f"values differ, mean |difference| {acc['sample_mean_abs_difference']:.2f} of 255, "
        f"max {acc['sample_max_abs_difference']}.\n"
    )
    print_speed_table(result['speed'], PRECISIONS)
    print('JSON ' + dumps(result))


if __name__ == '__main__':
    main()
