"""The multi-scale model (paper figure 2b) and its views.

    glow.py           Glow (keras.Model): L levels and the top prior
    level.py          Level: squeeze -> K flow steps -> split, with its memory mode
    memory.py         what the backward pass recomputes: plain / checkpointed / reversible steps
    shared_steps.py   SharedSteps: a level's K steps as K calls of one traced step function
    latents.py        the latent random scheme (same seed, same images everywhere); packing
                      the per-level latents into one image-shaped tensor
    preprocessing.py  n-bit images <-> the flow's continuous inputs, bits per dimension
    bijector.py       the flow as a tfp.bijectors.Bijector / TransformedDistribution

Imports `glow_tf.flows` (and through it `glow_tf.nets`); never training, tools, data or cli.
"""
