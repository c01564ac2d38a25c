"""glow_tf: Glow (Kingma & Dhariwal, 2018) in TensorFlow 2 / Keras 3.

The package face. Flow layers (`glow_tf.flows`, one module per concept): ActNorm,
InvertibleConv1x1, ChannelPermutation, Coupling (its network: CouplingNetwork, `glow_tf.nets`),
Squeeze (squeeze2d / unsqueeze2d), Split, TopPrior, FlowStep; the model (`glow_tf.model`): a `Level`
(squeeze -> K steps -> split) and the multi-scale `Glow`, whose `bijector` / `distribution` are
the TFP view; `preprocess` / `postprocess` for n-bit images; `load_model(logdir)` for a trained
run. The layout and the way imports run: docs/architecture.md.
"""

import os as _os
import sys as _sys

# The console scripts (glow-train, glow-sample, glow-manipulate) import this package, and so
# TensorFlow, before their main() runs: quiet TensorFlow's C++ start-up banner for them here
# (train.py / sample.py / manipulate.py do it themselves). Library users keep their settings.
if _sys.argv and _os.path.basename(_sys.argv[0] or '').startswith('glow-'):
    _os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from glow_tf.flows.actnorm import ActNorm
from glow_tf.flows.coupling import Coupling
from glow_tf.flows.flow_step import FlowStep
from glow_tf.flows.invertible_conv import InvertibleConv1x1
from glow_tf.flows.permutation import ChannelPermutation
from glow_tf.flows.priors import TopPrior, standard_normal_log_prob
from glow_tf.flows.split import Split
from glow_tf.flows.squeeze import Squeeze, squeeze2d, unsqueeze2d
from glow_tf.model.glow import Glow
from glow_tf.model.level import Level
from glow_tf.model.preprocessing import nats_to_bits_per_dim, postprocess, preprocess
from glow_tf.nets.coupling_net import CouplingNetwork
from glow_tf.nets.factories import CouplingNetworks, ZeroConvs, ZeroDenses
from glow_tf.runs.load import load_model

__version__ = '0.2.0'


__all__ = [
    'ActNorm',
    'ChannelPermutation',
    'Coupling',
    'CouplingNetwork',
    'CouplingNetworks',
    'FlowStep',
    'Glow',
    'InvertibleConv1x1',
    'Level',
    'Split',
    'TopPrior',
    'load_model',
    'nats_to_bits_per_dim',
    'postprocess',
    'preprocess',
    'Squeeze',
    'squeeze2d',
    'standard_normal_log_prob',
    'unsqueeze2d',
    'ZeroConvs',
    'ZeroDenses',
]
