"""Flow layers: invertible maps x -> (y, log|det dy/dx|) with an exact inverse (paper Table 1).

    base.py             FlowLayer (the contract), chain_forward / chain_inverse, sum_except_batch
    terms.py            WeightTerms: a layer's computation split into what depends on its
                        weights alone (computable for K stacked steps at once) and its use on x
    actnorm.py          ActNorm                       Table 1, line 1
    invertible_conv.py  InvertibleConv1x1             Table 1, line 2 (and its LU form)
    permutation.py      ChannelPermutation            section 4.1's reverse / shuffle
    coupling.py         Coupling (affine / additive)  Table 1, line 3; its NN() is injected
    flow_step.py        FlowStep: ActNorm -> 1x1 conv / permutation -> Coupling (figure 2a)
    squeeze.py          Squeeze (squeeze2d / unsqueeze2d)  [H, W, C] <-> [H/2, W/2, 4C]
    split.py            Split: z -> (z_1, eps) with the learned prior p(z_2 | z_1)
    priors.py           TopPrior: the last level's prior (learntop, class-conditional)
    networks.py         how Coupling, Split and TopPrior take their network: a Keras layer or a
                        factory (in_channels, out_channels, name) -> layer

Imports: nothing outside this package but the utilities. The networks inside couplings and
priors (`glow_tf.nets`, which uses `flows.base`, `flows.actnorm` and `flows.terms`) are passed
in by the model.
"""
