"""The Frechet distance between two Gaussians fitted to feature vectors.

    d^2 = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)

(the 2-Wasserstein distance between N(mu_a, S_a) and N(mu_b, S_b); FID is this with Inception-v3
pool features). The trace of the matrix square root is the sum of the square roots of the
eigenvalues of the symmetric PSD matrix S_a^1/2 S_b S_a^1/2, computed with `eigh` in float64.

It is biased upwards for finite samples (the sample covariances are noisy): compare only numbers
computed with the same n.
"""

import numpy as np


def feature_stats(features):
    """(mean [d], covariance [d, d]) of features [n, d], in float64 (covariance with n - 1)."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f'expected features [n >= 2, d], got shape {f.shape}')
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrt_psd(s):
    """The symmetric square root of a symmetric PSD matrix (negative round-off eigenvalues -> 0)."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu_a, cov_a, mu_b, cov_b):
    """d^2 between N(mu_a, cov_a) and N(mu_b, cov_b) (see the module docstring); a float >= 0."""
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    root_a = _sqrt_psd(cov_a)
    cross = root_a @ cov_b @ root_a
    w = np.linalg.eigvalsh((cross + cross.T) / 2)
    trace_sqrt = np.sqrt(np.clip(w, 0, None)).sum()
    d = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt
    return float(max(d, 0.0))


def features_frechet(features_a, features_b):
    """d^2 between Gaussians fitted to features [n_a, d] and [n_b, d]."""
    return frechet_distance(*feature_stats(features_a), *feature_stats(features_b))
