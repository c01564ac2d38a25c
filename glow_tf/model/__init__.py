"""The multi-scale model (paper figure 2b) and its views.

    glow.py           Glow (keras.Model): L levels of squeeze -> K flow steps -> split, top prior
    memory.py         what the backward pass recomputes: reversible / checkpointed flow steps
    preprocessing.py  n-bit images <-> the flow's continuous inputs, bits per dimension
    bijector.py       the flow as a tfp.bijectors.Bijector / TransformedDistribution

Imports `glow_tf.flows` (and through it `glow_tf.nets`); never training, tools, data or cli.
"""
