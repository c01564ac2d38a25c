"""Tools on a trained Glow: sampling, latent manipulation, SavedModel export.

    trained.py       the tools' view of a trained model: `load_trained_model` -> a TrainedModel
                     (a Glow in memory or an exported SavedModel) with batched encode / decode /
                     sample on numpy arrays
    images.py        PNG grids and files, input images at the model's size, .npz files
    sampling.py      samples at several temperatures, sample grids, fresh seeds
    manipulation.py  latents files, attribute directions, edits, interpolation
    export.py        a SavedModel with sample / encode / decode / log_likelihood signatures

Tools read runs through `glow_tf.runs` and never import `glow_tf.training`.
"""
