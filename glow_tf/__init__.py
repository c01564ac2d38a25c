"""glow_tf: Glow (Kingma & Dhariwal, 2018) in TensorFlow 2 / Keras 3.

Layers (one module per concept): ActNorm, InvertibleConv1x1, ChannelPermutation, Coupling,
squeeze2d / unsqueeze2d, Split, TopPrior, FlowStep; the multi-scale model `Glow`; the TFP view
`GlowBijector`; and `preprocess` / `postprocess` for n-bit images.
"""
from glow_tf.actnorm import ActNorm
from glow_tf.coupling import Coupling, CouplingNetwork
from glow_tf.flow_step import FlowStep
from glow_tf.invertible_conv import InvertibleConv1x1
from glow_tf.model import Glow
from glow_tf.permutation import ChannelPermutation
from glow_tf.preprocessing import nats_to_bits_per_dim, postprocess, preprocess
from glow_tf.priors import TopPrior, standard_normal_log_prob
from glow_tf.split import Split
from glow_tf.squeeze import squeeze2d, unsqueeze2d

__version__ = '0.1.0'

__all__ = ['ActNorm', 'ChannelPermutation', 'Coupling', 'CouplingNetwork', 'FlowStep', 'Glow',
           'InvertibleConv1x1', 'Split', 'TopPrior', 'nats_to_bits_per_dim', 'postprocess',
           'preprocess', 'squeeze2d', 'standard_normal_log_prob', 'unsqueeze2d']
