"""Out-of-distribution statistics on per-image scores (higher score = judged more foreign).

AUROC = P(s_out > s_in) + 1/2 · P(s_out = s_in)          (Mann-Whitney U / (n_in · n_out))

FPR95: the threshold t accepts 95% of the in-distribution images (s_in <= t for 95% of them,
t their 95th percentile); FPR95 is the fraction of foreign images also accepted (s_out <= t).

typicality (Nalisnick et al. 2019, "Detecting out-of-distribution inputs to deep generative
models using typicality"): for a batch of M images,

    ε̂ = | mean_batch(bits/dim) - H |,   H = mean bits/dim of the in-distribution reference

A batch is flagged when ε̂ exceeds the 99th percentile of ε̂ over reference batches. Batches are
drawn with replacement by a seeded generator (deterministic), from the same reference that
gives H (a researcher with a separate validation split should pass that as the reference).

complexity score (Serrà et al. 2020): S(x) = bits/dim(x) - L(x), L the bits/dim of a lossless
compressor (PNG at compression level 9, here).
"""

import io

import numpy as np


def auroc(in_scores, out_scores):
    """AUROC of telling out_scores (positives) from in_scores by thresholding (module docstring)."""
    a, b = np.asarray(in_scores, np.float64), np.asarray(out_scores, np.float64)
    if not len(a) or not len(b):
        raise ValueError("auroc needs at least one score in each set")
    both = np.concatenate([a, b])
    order = np.argsort(both, kind='mergesort')
    ranks = np.empty(len(both))
    sorted_vals = both[order]
    # average ranks over ties (1-based)
    start = 0
    while start < len(both):
        end = start
        while end + 1 < len(both) and sorted_vals[end + 1] == sorted_vals[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    u = ranks[len(a) :].sum() - len(b) * (len(b) + 1) / 2
    return float(u / (len(a) * len(b)))


def fpr_at_tpr(in_scores, out_scores, tpr=0.95):
    """Fraction of out_scores at or below the `tpr` quantile of in_scores (module docstring)."""
    threshold = np.quantile(np.asarray(in_scores, np.float64), tpr)
    return float(np.mean(np.asarray(out_scores, np.float64) <= threshold))


def typicality(in_bits, out_bits, batch_size=16, n_batches=1000, quantile=0.99, seed=0):
    """Typicality test of `out_bits` against the reference `in_bits` (module docstring) -> dict:
    reference_mean (H), set_mean, statistic (|set_mean - H|, the whole set as one batch),
    batch_size, n_batches, threshold (the `quantile` of reference batches' ε̂), detection_rate
    (fraction of the set's batches flagged), false_alarm_rate (of reference batches), auroc
    (of batch ε̂, set against reference), seed."""
    a, b = np.asarray(in_bits, np.float64), np.asarray(out_bits, np.float64)
    rng = np.random.default_rng(seed)
    h = float(a.mean())
    ref_eps = np.abs(a[rng.integers(0, len(a), (n_batches, batch_size))].mean(1) - h)
    out_eps = np.abs(b[rng.integers(0, len(b), (n_batches, batch_size))].mean(1) - h)
    threshold = float(np.quantile(ref_eps, quantile))
    return {
        'reference_mean': h,
        'set_mean': float(b.mean()),
        'statistic': abs(float(b.mean()) - h),
        'batch_size': int(batch_size),
        'n_batches': int(n_batches),
        'quantile': float(quantile),
        'threshold': threshold,
        'detection_rate': float(np.mean(out_eps > threshold)),
        'false_alarm_rate': float(np.mean(ref_eps > threshold)),
        'auroc': auroc(ref_eps, out_eps),
        'seed': int(seed),
    }


def png_bits_per_dim(images):
    """uint8 images [N, H, W, C] -> [N]: PNG size (compression level 9) in bits / (H·W·C)."""
    from PIL import Image

    images = np.asarray(images, np.uint8)
    n_dims = int(np.prod(images.shape[1:]))
    out = np.empty(len(images))
    for i, image in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(
            buf, format='PNG', compress_level=9
        )
        out[i] = 8 * buf.tell() / n_dims
    return out
