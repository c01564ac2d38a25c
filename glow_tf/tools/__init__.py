"""Tools on a trained Glow: sampling, latent manipulation, SavedModel export.

    sampling.py      Flow backends (a Keras model or an exported SavedModel), latents, image grids
    manipulation.py  encode / decode images, attribute directions, edits, interpolation
    export.py        a SavedModel with sample / encode / decode / log_likelihood signatures

Tools read runs through `glow_tf.runs` and never import `glow_tf.training`.
"""
