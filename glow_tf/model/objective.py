"""The training objective's loss and its argument check (shared by `Glow.compile`, the
trainer's steps and the training config).

    loss per example = bits_x + weight_y · bits_y        (the original's objective)

bits_x: dequantised bits/dim of the image under the flow; bits_y: the class head's cross-entropy
in bits (class-conditional models only).
"""

from glow_tf.errors import ArgumentError


def glow_loss(bits_x, bits_y, weight_y=0.0):
    """The training loss per example, bits_x + weight_y · bits_y ([B] each -> [B]): dequantised
    bits/dim plus the weighted class cross-entropy in bits (the original's objective; the batch
    loss is its mean)."""
    return bits_x + weight_y * bits_y


def check_weight_y(weight_y, n_classes):
    """ArgumentError('weight_y') for a negative weight, or a positive one for a model without a
    class head (n_classes = 0)."""
    if float(weight_y) < 0 or (float(weight_y) > 0 and not n_classes):
        raise ArgumentError(
            'weight_y',
            "weight_y must be >= 0, and > 0 only for a class-conditional model (n_classes > 0, "
            f"--ycond); got {weight_y} with n_classes={n_classes}",
        )
