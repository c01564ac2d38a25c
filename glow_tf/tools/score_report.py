"""The files `score.py --out DIR` writes: report.json, scores.csv (one row per image),
summary.md and histogram.png (bits/dim of every set, drawn with PIL)."""

import csv
import json
import os

import numpy as np

from glow_tf.fileio import atomic_write_bytes
from glow_tf.tools import ood_stats


def set_entry(bits, parts):
    """The report's entry of one set from its bits/dim [N] and per-level parts [N, L] or None.

    Mean, std and per-level means are over the images with a finite score; `n_nonfinite` counts
    the others (a float32 overflow inside the flow on inputs far from the training data)."""
    finite = np.isfinite(bits)
    kept = bits[finite] if finite.any() else bits
    return {
        'n': int(len(bits)),
        'n_nonfinite': int((~finite).sum()),
        'bits_per_dim_mean': float(kept.mean()),
        'bits_per_dim_std': float(kept.std()),
        'per_level_bits_per_dim': (
            None
            if parts is None
            else [float(v) for v in parts[finite if finite.any() else ...].mean(0)]
        ),
    }


def finite_or_none(obj):
    """`obj` with every non-finite float replaced by None (JSON has no inf / NaN)."""
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite_or_none(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def comparison(ref, other, typicality_batch=16):
    """The report's comparison of one set against the reference; each of `ref` / `other` is a
    dict with 'bits' [N], 'png' [N] and optionally 'llr' [N] (model minus background bits/dim)."""
    out = {
        'auroc_bits_per_dim': ood_stats.auroc(ref['bits'], other['bits']),
        'auroc_complexity': ood_stats.auroc(ref['bits'] - ref['png'], other['bits'] - other['png']),
        'fpr95_bits_per_dim': ood_stats.fpr_at_tpr(ref['bits'], other['bits']),
        'typicality': ood_stats.typicality(ref['bits'], other['bits'], typicality_batch),
    }
    if 'llr' in ref:
        out['auroc_likelihood_ratio'] = ood_stats.auroc(ref['llr'], other['llr'])
    return out


def write_csv(path, sets):
    """scores.csv: set, index, name, bits_per_dim, png_bits_per_dim, complexity, level_l..., llr."""
    n_levels = max(
        (s['parts'].shape[1] for s in sets.values() if s['parts'] is not None), default=0
    )
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        head = ['set', 'index', 'name', 'bits_per_dim', 'png_bits_per_dim', 'complexity']
        w.writerow(head + [f'level_{i}' for i in range(n_levels)] + ['likelihood_ratio'])
        for set_name, s in sets.items():
            for i, name in enumerate(s['names']):
                levels = [] if s['parts'] is None else [f'{v:.6f}' for v in s['parts'][i]]
                llr = f"{s['llr'][i]:.6f}" if 'llr' in s else ''
                b, p = s['bits'][i], s['png'][i]
                w.writerow(
                    [set_name, i, name, f'{b:.6f}', f'{p:.6f}', f'{b - p:.6f}', *levels, llr]
                )


def summary_markdown(report):
    """summary.md: one table of the sets, one of the comparisons."""
    lines = [f"# Scores of {report['model']['path']}", '', report['model']['scoring'], '']
    lines += [
        '| set | n | non-finite | bits/dim mean | std | per level (top prior last) |',
        '|---|---|---|---|---|---|',
    ]
    for name, s in report['sets'].items():
        levels = s['per_level_bits_per_dim']
        levels = ' / '.join(f'{v:.4g}' for v in levels) if levels else 'n/a'
        lines.append(
            f"| {name} | {s['n']} | {s['n_nonfinite']} | {s['bits_per_dim_mean']:.4g} "
            f"| {s['bits_per_dim_std']:.4g} "
            f"| {levels} |"
        )
    ref = next(iter(report['sets']))
    lines += [
        '',
        f'Against the reference `{ref}` (higher AUROC = the set is told apart better; '
        '0.5 = chance, below 0.5 = the set looks *more* in-distribution than the reference):',
        '',
    ]
    lines += [
        '| set | AUROC bits/dim | AUROC complexity | FPR95 | typicality ε̂ (thr.) | detected '
        '| AUROC LLR |',
        '|---|---|---|---|---|---|---|',
    ]
    for name, c in report['comparisons'].items():
        t = c['typicality']
        llr = c.get('auroc_likelihood_ratio')
        lines.append(
            f"| {name} | {c['auroc_bits_per_dim']:.3f} | {c['auroc_complexity']:.3f} "
            f"| {c['fpr95_bits_per_dim']:.3f} | {t['statistic']:.4g} ({t['threshold']:.3f}) "
            f"| {t['detection_rate']:.2f} | {'n/a' if llr is None else f'{llr:.3f}'} |"
        )
    return '\n'.join(lines) + '\n'


COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def histogram_png(path, sets, width=640, height=320, n_bins=60, span=8.0):
    """Overlaid outline histograms (density) of every set's bits/dim, with a legend.

    The axis covers the sets' 1st to 99th percentiles, but at most `span` bits/dim above the
    reference's (first set's) 99th percentile: values beyond the axis are counted in its end bins
    and the legend says how many there are (e.g. noise under a face model)."""
    from PIL import Image, ImageDraw

    finite = {k: s['bits'][np.isfinite(s['bits'])] for k, s in sets.items()}
    finite = {k: v if len(v) else np.zeros(1) for k, v in finite.items()}
    ref = next(iter(finite.values()))
    lo = min(float(np.quantile(v, 0.01)) for v in finite.values())
    hi = max(float(np.quantile(v, 0.99)) for v in finite.values())
    hi = min(hi, float(np.quantile(ref, 0.99)) + span)
    hi = hi if hi > lo else lo + 1.0
    edges = np.linspace(lo, hi, n_bins + 1)
    clipped = {
        k: np.clip(np.nan_to_num(s['bits'], nan=hi, posinf=hi, neginf=lo), lo, hi)
        for k, s in sets.items()
    }
    hists = {k: np.histogram(v, edges, density=True)[0] for k, v in clipped.items()}
    top = max(float(h.max()) for h in hists.values()) or 1.0
    img = Image.new('RGB', (width, height), 'white')
    d = ImageDraw.Draw(img)
    left, right, upper, lower = 40, width - 10, 10, height - 30
    d.line([(left, lower), (right, lower)], fill='black')
    d.line([(left, upper), (left, lower)], fill='black')
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + frac * (right - left)
        d.line([(x, lower), (x, lower + 4)], fill='black')
        d.text((x - 12, lower + 6), f'{lo + frac * (hi - lo):.2f}', fill='black')
    d.text((right - 60, lower + 18), 'bits/dim', fill='black')
    for i, (name, h) in enumerate(hists.items()):
        colour = COLOURS[i % len(COLOURS)]
        pts = []
        for j, v in enumerate(h):
            y = lower - (v / top) * (lower - upper)
            x0 = left + j / n_bins * (right - left)
            x1 = left + (j + 1) / n_bins * (right - left)
            pts += [(x0, y), (x1, y)]
        d.line([(left, lower)] + pts + [(right, lower)], fill=colour, width=2)
        bits = sets[name]['bits']
        off = int(np.sum(~((bits >= lo) & (bits <= hi))))
        label = f'{name} (n={len(bits)}, mean {np.mean(bits):.3g})'
        label += f', {off} off scale' if off else ''
        d.text((left + 10, upper + 4 + 14 * i), label, fill=colour)
    img.save(path, format='PNG', optimize=True)


def write_report(out_dir, report, sets):
    """Write report.json, scores.csv, summary.md, histogram.png into out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    _write_text(
        os.path.join(out_dir, 'report.json'),
        json.dumps(finite_or_none(report), indent=2, allow_nan=False) + '\n',
    )
    write_csv(os.path.join(out_dir, 'scores.csv'), sets)
    _write_text(os.path.join(out_dir, 'summary.md'), summary_markdown(report))
    histogram_png(os.path.join(out_dir, 'histogram.png'), sets)


def _write_text(path, text):
    atomic_write_bytes(path, lambda f: f.write(text.encode()))
