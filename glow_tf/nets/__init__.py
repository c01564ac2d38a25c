"""The networks inside coupling layers and learned priors.

    conv.py          conv2d_same: 3x3 / 1x1 convolutions with the original's edge-bias padding
    zero_conv.py     ZeroConv2D, ZeroDense: zero-initialised output layers (every flow starts at
                     the identity, every prior at N(0, I))
    coupling_net.py  CouplingNetwork: NN() = conv3x3 -> ActNorm -> ReLU -> conv1x1 -> ActNorm ->
                     ReLU -> ZeroConv3x3

Builds on `glow_tf.flows.actnorm` only; used by `flows.coupling`, `flows.split`, `flows.priors`.
"""
