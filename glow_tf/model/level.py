"""One level of the multi-scale architecture (paper figure 2b, the part inside the "x L" box).

    x [B, H, W, C] --squeeze--> [B, H/2, W/2, 4C] --K x FlowStep--> z --split--> (z_1, ε)

    forward(x)       -> (z_1 [B, H/2, W/2, 2C], ε [B, H/2, W/2, 2C], log-det [B])
    inverse(z_1, ε)  -> (x, log-det [B]),        log-det = -(forward's)

The last level of a model does not split: forward returns (z [B, H/2, W/2, 4C], None, log-det)
and the model's top prior standardises z. The log-det sums the K steps' and the split's
(`Split`: ε = (z_2 - μ(z_1)) / σ(z_1) contributes -Σ log σ).

The level owns its memory mode ('plain', 'checkpoint' or 'reversible'): how the backward pass
through its K steps is computed (`glow_tf.model.memory`); the split runs plainly.

The constructor creates the layers; `build` creates their weights, inside the level's name
scope, so variable paths are `{name}/{name}_step{k}/actnorm/bias`,
`{name}/{name}_split/prior/kernel` (in a model: prefixed with the model's name).
"""

import keras

from glow_tf.errors import ArgumentError
from glow_tf.flows.flow_step import FlowStep
from glow_tf.flows.networks import deserialize_network, serialize_network
from glow_tf.flows.split import Split
from glow_tf.flows.squeeze import Squeeze
from glow_tf.model.memory import steps_runner
from glow_tf.model.shared_steps import SharedSteps
from glow_tf.nets.factories import CouplingNetworks, ZeroConvs


@keras.saving.register_keras_serializable(package='glow_tf')
class Level(keras.layers.Layer):
    """squeeze -> K flow steps -> split (module docstring). Builds on first use (or in the
    model's `build`): the shapes follow from `input_shape`.

    Args:
        input_shape: (H, W, C) of the level's input, H and W even.
        depth: K, the number of flow steps (>= 1).
        split: factor out half the channels at the end (False for the model's last level).
        memory_mode: 'plain', 'checkpoint' or 'reversible'; can be changed later.
        width: hidden channels of every coupling network (the paper's NN()).
        permutation: '1x1', 'reverse' or 'shuffle' (FlowStep).
        coupling: 'affine' or 'additive' (FlowStep).
        lu_decomposed: LU-parameterised 1x1 convolutions.
        seed: seed of the first step; step k uses seed + k.
        edge_bias: the original's border channel in the 3x3 convolutions (steps and split).
        coupling_network: None for the paper's NN() (`glow_tf.nets.CouplingNetworks(width,
            seed + k, edge_bias)` for step k), or the coupling network of every step: a factory
            (in_channels, out_channels, name) -> layer (`glow_tf.flows.networks`).
        name: the level's name (Keras picks one if None), the prefix of its layers' names:
            `{name}_step{k}`, `{name}_split`; `Glow` names its levels 'level0', 'level1', ...
        shared_steps: when the K steps run as K calls of one traced step function: 'inference',
            'always' or 'never' (`glow_tf.model.shared_steps`); `level.shared_steps.policy`
            changes it later.
    """

    def __init__(
        self,
        input_shape,
        depth,
        split=True,
        memory_mode='plain',
        width=512,
        permutation='1x1',
        coupling='affine',
        lu_decomposed=False,
        seed=0,
        edge_bias=True,
        coupling_network=None,
        shared_steps='inference',
        name=None,
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        height, width_px, channels = (int(d) for d in input_shape)
        if height % 2 or width_px % 2:
            raise ValueError(
                f"a level squeezes 2x2 blocks: input_shape must have even height and width, "
                f"got {tuple(input_shape)}"
            )
        Level.check_arguments(depth)  # the memory mode: checked by its setter below
        self.level_input_shape = (height, width_px, channels)
        self.depth, self.width, self.seed = int(depth), int(width), int(seed)
        self.permutation, self.coupling_kind = permutation, coupling
        self.lu_decomposed, self.edge_bias = bool(lu_decomposed), bool(edge_bias)
        self.coupling_network = coupling_network
        self.memory_mode = memory_mode
        self.squeeze = Squeeze(name=f'{self.name}_squeeze')
        self.steps = [
            FlowStep(
                network=coupling_network
                or CouplingNetworks(self.width, seed=self.seed + k, edge_bias=self.edge_bias),
                permutation=permutation,
                coupling=coupling,
                lu_decomposed=self.lu_decomposed,
                seed=self.seed + k,
                name=f'{self.name}_step{k}',
            )
            for k in range(self.depth)
        ]
        self.shared_steps = SharedSteps(self.steps, shared_steps)
        self.split = None
        if split:
            self.split = Split(ZeroConvs(self.edge_bias), name=f'{self.name}_split')

        self.squeezed_shape = squeezed = (height // 2, width_px // 2, 4 * channels)
        if split:
            n_keep = Split.kept_channels(squeezed[2])
            self.output_z_shape = squeezed[:2] + (n_keep,)
            self.eps_shape = squeezed[:2] + (squeezed[2] - n_keep,)
        else:
            self.output_z_shape, self.eps_shape = squeezed, None

    def build(self, input_shape=None):
        """Create the steps' and the split's weights for inputs [B, H, W, C] (`input_shape`)."""
        if input_shape is not None and tuple(input_shape[1:]) != self.level_input_shape:
            raise ValueError(
                f"level {self.name!r} was made for inputs {self.level_input_shape}, "
                f"got shape {tuple(input_shape)}"
            )
        squeezed = (None,) + self.squeezed_shape
        for step in self.steps:
            step.build(squeezed)
        if self.split is not None:
            self.split.build(squeezed)

    @staticmethod
    def check_arguments(depth, memory_mode='plain'):
        """ArgumentError('depth' / 'memory_mode') for fewer than one step or an unknown mode."""
        if int(depth) < 1:
            raise ArgumentError('depth', f"depth (flow steps per level) must be >= 1, got {depth}")
        steps_runner(memory_mode)

    @property
    def memory_mode(self):
        """'plain', 'checkpoint' or 'reversible': how the backward pass runs through the steps."""
        return self._memory_mode

    @memory_mode.setter
    def memory_mode(self, mode):
        self._run_steps = steps_runner(mode)  # ValueError naming memory_mode for an unknown mode
        self._memory_mode = mode

    def actnorm_layers(self):
        """Every ActNorm of the level's steps (their own and their coupling networks'), in order."""
        return [layer for step in self.steps for layer in step.actnorm_layers()]

    def forward(self, x):
        """x [B, H, W, C] -> (z, ε or None, log|det d(z, ε)/dx| [B]) (module docstring)."""
        self._build_once()
        z, _ = self.squeeze.forward(x)  # log-det 0
        if self.memory_mode == 'plain':
            z, log_det = self.shared_steps.forward(z)
        else:
            z, log_det = self._run_steps(self.steps, z)
        if self.split is None:
            return z, None, log_det
        z, eps, split_log_det = self.split.forward(z)
        return z, eps, log_det + split_log_det

    def inverse(self, z, eps=None):
        """(z, ε) -> (x [B, H, W, C], log|det dx/d(z, ε)| [B]); ε is None on an unsplit level."""
        self._build_once()
        log_det = 0.0
        if self.split is not None:
            if eps is None:
                raise ValueError(f"level {self.name!r} splits: its inverse needs the latent ε")
            z, log_det = self.split.inverse(z, eps)
        z, steps_log_det = self.shared_steps.inverse(z)
        return self.squeeze.inverse(z)[0], log_det + steps_log_det

    def _build_once(self):
        if not self.built:
            self.build((None,) + self.level_input_shape)

    def call(self, x):
        return self.forward(x)

    def compute_output_shape(self, input_shape):
        """[B, H, W, C] -> (z [B, ...], ε [B, ...], log-det [B]); (z, log-det) on a level that
        does not split (its ε is None, which has no shape)."""
        batch = input_shape[0]
        z_shape = (batch,) + self.output_z_shape
        if self.eps_shape is None:
            return z_shape, (batch,)
        return z_shape, (batch,) + self.eps_shape, (batch,)

    def get_config(self):
        return {
            **super().get_config(),
            'input_shape': list(self.level_input_shape),
            'depth': self.depth,
            'split': self.split is not None,
            'memory_mode': self.memory_mode,
            'width': self.width,
            'permutation': self.permutation,
            'coupling': self.coupling_kind,
            'lu_decomposed': self.lu_decomposed,
            'seed': self.seed,
            'edge_bias': self.edge_bias,
            'coupling_network': serialize_network(self.coupling_network),
            'shared_steps': self.shared_steps.policy,
        }

    @classmethod
    def from_config(cls, config):
        network = deserialize_network(config.get('coupling_network'))
        return cls(**{**config, 'coupling_network': network})
