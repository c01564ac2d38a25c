"""The Glow training loop: one program for 1 process and for `horovodrun -np N`.

    trainer = Trainer(config)          # an (unresolved) TrainConfig from the command line
    result = trainer.run()             # trains (or evaluates, with config.inference)

What one run does, on every worker unless noted:
 1. Horovod init + GPU pinning (`Distributed`), seeds rank + size * seed (as the original).
 2. Data source (`glow_tf.data.load_source`), config resolution and validation (per-worker batch
    sizes, iterations per epoch, beta2); rank 0 writes logdir/config.json.
 3. Model, optimiser (Adamax/Adam), Polyak EMA, TrainState; one tf.train.Checkpoint over them.
 4. Resume from the newest checkpoint of logdir/checkpoints that really loads (recovery.py;
    skipped ones are reported), or from --restore_path: rank 0 reads it and broadcasts every
    variable. A log dir with a previous run but no loadable checkpoint is refused (ConfigError)
    unless --start_over. Otherwise data-dependent ActNorm init on n_batch_init images per
    worker with statistics averaged over all workers, then a broadcast from rank 0.
 5. Steps: loss = mean(bits_x) + weight_y * mean(bits_y) on dequantised images; gradients
    averaged by hvd.DistributedGradientTape (w.r.t. the tf.Variables behind the Keras ones);
    a step whose (global) loss or gradients are not finite is skipped on all workers alike, and
    one whose update leaves any weight or EMA average non-finite is rolled back (apply_step);
    `max_nonfinite` in a row stop training with NonFiniteLossError, leaving the last checkpoint.
    SIGTERM / SIGINT on any worker: all stop after the current step, rank 0 checkpoints, and
    StoppedBySignal is raised (stop.py). Checkpoints also every --ckpt_every_minutes.
 6. Each epoch (n_train images): train.jsonl record, checkpoint; every epochs_full_valid epochs
    a full test pass with the EMA weights (allreduced), best checkpoint kept; sample grids at
    epochs 1, 10 and every epochs_full_sample epochs (rank 0, EMA weights).

Exactly what resume restores: all model variables, the EMA averages, the optimiser slots and
iteration count, and the counters step / epoch / epoch_step / n_processed / n_images /
best_test_loss / n_skipped / train_time. The randomness needs no saved state: dequantisation
noise is a stateless function of (seed, rank, step), and each epoch's data stream is rebuilt from
(seed, epoch) and fast-forwarded past the `epoch_step` batches already consumed, so a resumed run
sees the same batches and noise as an uninterrupted one (exact for deterministic data sources;
bounded cost: at most one epoch of input reading).
"""

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from glow_tf.fileio import atomic_write_bytes
from glow_tf.progress import progress_bar, stage
from glow_tf.runs import checkpoint as ckpt_lib
from glow_tf.runs.config import ConfigError, TrainConfig
from glow_tf.training import recovery
from glow_tf.training.distributed import Distributed
from glow_tf.training.ema import EMA
from glow_tf.training.logs import RunLogger
from glow_tf.training.optim import make_optimizer, step_learning_rate
from glow_tf.training.samples import write_sample_grids
from glow_tf.training.stop import StoppedBySignal, StopRequest
from glow_tf.variables import tf_variables


class NonFiniteLossError(RuntimeError):
    """Raised after `max_nonfinite` consecutive steps with a non-finite loss or gradient."""


def mix_seed(*parts):
    """A deterministic non-negative int63 from integers (splitmix-style)."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h ^= (int(p) + 0x9E3779B97F4A7C15 + ((h << 6) & (2**64 - 1)) + (h >> 2)) & (2**64 - 1)
        h = (h * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        h ^= h >> 31
    return h & (2**63 - 1)


def rank_noise_seed(seed, rank):
    return mix_seed(seed, rank, 0x6E6F697365)  # 'noise'


def default_noise(shape, step, rank_seed):
    """Uniform [0, 1) dequantisation noise, a stateless function of (rank_seed, step)."""
    s = tf.stack([tf.constant(rank_seed % (2**62), tf.int64), tf.cast(step, tf.int64)])
    return tf.random.stateless_uniform(shape, seed=s)


class Trainer:
    """See the module docstring. Hooks for tests: `source` (data-API object), `noise_fn`
    (callable(shape, step) -> uniform noise) and `dist` (a Distributed)."""

    def __init__(self, config: TrainConfig, dist=None, source=None, noise_fn=None):
        self.flags = config
        self.dist = dist or Distributed()
        self.source = source
        self._noise_fn = noise_fn
        self.result = {}

    # ================================================================== setup
    def setup(self):
        flags = self.flags.validate_flags()
        dist = self.dist.init()
        self.rank, self.size = dist.rank, dist.size
        self.chief = dist.is_chief
        tf.random.set_seed(self.rank + self.size * flags.seed)
        np.random.seed((self.rank + self.size * flags.seed) % (2**32))

        if self.source is None:
            from glow_tf.data import load_source

            kw = dict(
                data_dir=flags.data_dir or None,
                image_size=flags.image_size if flags.image_size > 0 else None,
                n_test=flags.n_test if flags.n_test > 0 else None,
                category=flags.category or None,
                skip_bad=bool(flags.skip_bad),
            )
            self.source = load_source(flags.problem, **kw)
        src = self.source
        cfg = flags.resolve(src.image_shape, src.n_test, src.n_classes, dist.size)
        self.cfg = cfg
        self.logdir = os.path.abspath(os.path.expanduser(cfg.logdir))
        self.rank_seed = rank_noise_seed(cfg.seed, self.rank)
        from glow_tf.data.augment import augmentation_for

        self.augmentation = augmentation_for(cfg.problem, cfg.dal)

        # Log dir check and resume decision on rank 0 (its view of the file system), shared with
        # everyone so that an error stops every worker instead of leaving the others waiting.
        self._notes = []
        restore, error, learntop_form = None, None, cfg.learntop_form
        if self.chief:
            try:
                recovery.check_logdir(self.logdir)
                restore = self._find_restore(cfg)
                if restore:
                    learntop_form = self._check_compatible(restore)
            except ConfigError as e:
                error = (e.flag, str(e)[len(e.flag) + 2 :])
        restore, error, learntop_form = dist.broadcast_object((restore, error, learntop_form), 0)
        if error:
            raise ConfigError(*error)
        # not a flag: a run saved before glow_tf had the original's learntop keeps its own form
        cfg.learntop_form = learntop_form  # (in place: keeps the notes resolve() attached)
        self.log = RunLogger(self.logdir, enabled=self.chief)
        for note in self._notes:
            self.log.warn(note)
        for note in getattr(cfg, 'notes', ()):
            self.log.print(f"note: {note}")
        self.restore_prefix = restore
        if self.chief and not cfg.inference:
            os.makedirs(self.logdir, exist_ok=True)
            cfg.save(os.path.join(self.logdir, ckpt_lib.CONFIG_NAME))

        import keras

        import glow_tf

        # Identical initial weights on every worker and in every run with this seed (rank 0's
        # are broadcast anyway); per-worker randomness uses explicit stateless seeds instead.
        keras.utils.set_random_seed(int(cfg.seed) % (2**32))
        show = self.chief and cfg.progress
        with stage(
            f"building the model ({cfg.n_levels} levels x {cfg.depth} steps, width {cfg.width})",
            enabled=show,
        ):
            self.model = glow_tf.Glow(**cfg.to_model_kwargs())
            self.tvars = tf_variables(self.model.trainable_variables)
            self.optimizer = make_optimizer(cfg)
            self.optimizer.build(self.model.trainable_variables)
        self.ema = EMA(self.model.trainable_variables, cfg.resolved_beta2)
        self.state = ckpt_lib.TrainState()
        self.checkpoint = ckpt_lib.make_checkpoint(self.model, self.ema, self.optimizer, self.state)
        self.use_ema = True  # the weights for samples until a test pass has compared both
        self.manager = self.best_manager = None
        if self.chief:
            self.manager = tf.train.CheckpointManager(
                self.checkpoint,
                os.path.join(self.logdir, ckpt_lib.CKPT_SUBDIR),
                max_to_keep=cfg.keep_checkpoints,
                checkpoint_name='ckpt',
            )
            self.best_manager = tf.train.CheckpointManager(
                self.checkpoint,
                os.path.join(self.logdir, ckpt_lib.BEST_SUBDIR),
                max_to_keep=1,
                checkpoint_name='ckpt',
            )
        self._build_functions()
        return self

    def _find_restore(self, cfg):
        """Rank 0: the checkpoint to resume from (None: fresh start). Walks back from the newest
        checkpoint to the newest one that really loads (recovery.py), notes what it skipped, and
        refuses to start over in a log dir that holds a previous run unless --start_over."""
        own_dir = os.path.join(self.logdir, ckpt_lib.CKPT_SUBDIR)
        best_dir = os.path.join(self.logdir, ckpt_lib.BEST_SUBDIR)
        for d in (own_dir, best_dir):
            for path in recovery.clean_stale_temp(d):
                self._notes.append(f"removed {path} (left by a checkpoint write that was cut off)")
        recovery.prepare_checkpoint_dir(best_dir)
        own, skipped = recovery.prepare_checkpoint_dir(own_dir)
        if skipped:
            self._notes.append(
                f"skipped unloadable checkpoint(s) in {own_dir}: "
                f"{recovery.describe_skipped(skipped)}"
            )
        if own is not None:
            if cfg.start_over and not cfg.inference:
                # a requeued command that still carries --start_over must not discard progress
                self._notes.append(
                    f"--start_over ignored: {own} loads, so the run resumes from "
                    "it (move or delete the log dir to really start over)"
                )
            if skipped:
                self._notes.append(f"resuming from {own}, the newest checkpoint that loads")
            if cfg.restore_path:
                self._notes.append(
                    f"{self.logdir} already has checkpoints; resuming from {own} "
                    f"and ignoring --restore_path {cfg.restore_path}"
                )
            return own
        if cfg.start_over and not cfg.inference and recovery.has_previous_run(self.logdir):
            moved = recovery.move_previous_run(self.logdir)
            self._notes.append(
                f"--start_over: none of the previous run's checkpoints loads; moved "
                f"its checkpoints and logs to {moved}"
            )
            return None
        if not cfg.inference and recovery.has_previous_run(self.logdir):
            why = (
                f"none of its checkpoints loads ({recovery.describe_skipped(skipped)})"
                if skipped
                else f"it has no checkpoint in {ckpt_lib.CKPT_SUBDIR}/"
            )
            raise ConfigError(
                '--logdir',
                f"{self.logdir} holds a previous run ({ckpt_lib.CONFIG_NAME}"
                f" and checkpoint files) but {why}. Refusing to start over there: "
                "restore a checkpoint, use a new --logdir, or pass --start_over "
                "(moves the old run into a previous-<time>/ subfolder and starts "
                "at step 0)",
            )
        if cfg.restore_path:
            found, skipped = ckpt_lib.find_loadable_at(cfg.restore_path)
            if found is None:
                raise ConfigError(
                    '--restore_path',
                    f"{cfg.restore_path}: no loadable checkpoint "
                    + (
                        f"({recovery.describe_skipped(skipped)}); give an older ckpt-N "
                        "prefix or another log dir"
                        if skipped
                        else "found (give a log dir, a checkpoint dir or a ckpt-N prefix)"
                    ),
                )
            if skipped:
                self._notes.append(
                    f"--restore_path: skipped {recovery.describe_skipped(skipped)}; using {found}"
                )
            return found
        if cfg.inference:
            raise ConfigError(
                '--inference',
                f"no loadable checkpoint in --logdir {self.logdir} and "
                "no --restore_path given"
                + (f" (skipped {recovery.describe_skipped(skipped)})" if skipped else ''),
            )
        return None

    def _check_compatible(self, prefix):
        """A resumed run must describe the same model as the checkpoint. Returns the saved
        learntop_form (which no flag sets)."""
        path = ckpt_lib.find_config(prefix)
        if path is None:
            return self.cfg.learntop_form
        saved = TrainConfig.load(path)
        # Not model arguments, but what the curves and bits/dim mean: the data and its bit depth.
        for k in ('problem', 'category', 'n_bits_x'):
            if getattr(self.cfg, k) != getattr(saved, k):
                raise ConfigError(
                    f'--{k}',
                    f"{getattr(self.cfg, k)!r} differs from the "
                    f"checkpoint's {getattr(saved, k)!r} ({path}): the logs would mix "
                    "two runs; use the original flags or a new --logdir",
                )
        mine, theirs = self.cfg.to_model_kwargs(), saved.to_model_kwargs()
        flag_of = {
            'image_shape': 'image_size',
            'lu_decomposed': 'lu',
            'n_classes': 'ycond',
            'memory_mode': None,
        }
        for k in mine:
            if k in ('memory_mode', 'learntop_form'):  # a memory mode may change on resume
                continue
            if tuple(np.atleast_1d(mine[k])) != tuple(np.atleast_1d(theirs[k])):
                flag = flag_of.get(k, k)
                raise ConfigError(
                    f'--{flag}',
                    f"{k}={mine[k]!r} differs from the checkpoint's "
                    f"{theirs[k]!r} ({path}); use the original flags or a new --logdir",
                )
        return saved.learntop_form

    # ================================================================== tf.functions
    def noise(self, shape, step):
        if self._noise_fn is not None:
            return self._noise_fn(shape, step)
        return default_noise(shape, step, self.rank_seed)

    def objective(self, x_uint8, y, noise):
        """(bits_x, bits_y, error), each [B], with the explicit dequantisation draw u ~ U[0,1)
        `noise`; error is the class head's 0/1 error (the original's pred_loss)."""
        model = self.model
        return model.objective(
            x_uint8,
            y if model.n_classes else None,
            int(self.cfg.n_bits_x),
            noise=noise,
            with_error=True,
        )

    def _build_functions(self):
        cfg, dist = self.cfg, self.dist
        weight_y = float(cfg.weight_y)

        def grad_step(x, y, step, inject_nan, stop):
            noise = self.noise(tf.shape(x), step)
            with tf.GradientTape() as tape:
                bits_x, bits_y, error = self.objective(x, y, noise)
                loss = tf.reduce_mean(bits_x) + weight_y * tf.reduce_mean(bits_y)
                loss = loss * tf.where(inject_nan, tf.constant(float('nan')), 1.0)
            grads = dist.gradient_tape(tape).gradient(loss, self.tvars)
            grads = [
                tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                for g, v in zip(grads, self.tvars)
            ]
            # `stop` (a signal number or 0) rides along, so all workers learn of a stop request
            stats = dist.allreduce_mean(
                tf.stack(
                    [
                        loss,
                        tf.reduce_mean(bits_x),
                        tf.reduce_mean(bits_y),
                        tf.reduce_mean(error),
                        stop,
                    ]
                )
            )
            finite = tf.reduce_all(tf.math.is_finite(stats))
            for g in grads:
                finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(g)))
            return grads, stats, finite

        # The pre-step copy: float32 state in one flat buffer (one concat + one assign per step
        # instead of one assign per variable), the few others (iteration counter) one by one.
        guarded = (
            self.tvars
            + tf_variables(self.optimizer.variables)
            + list(self.ema.shadow)
            + [self.ema.num_updates]
        )
        flat = [v for v in guarded if v.dtype == tf.float32]
        other = [v for v in guarded if v.dtype != tf.float32]
        sizes = [int(v.shape.num_elements()) for v in flat]
        with tf.init_scope():
            flat_backup = tf.Variable(tf.zeros([sum(sizes)], tf.float32), trainable=False)
            other_backup = [tf.Variable(v.read_value(), trainable=False) for v in other]

        def restore():
            parts = tf.split(flat_backup.read_value(), sizes)
            ops = [v.assign(tf.reshape(p, v.shape)) for v, p in zip(flat, parts)]
            ops += [v.assign(b) for b, v in zip(other_backup, other)]
            return ops

        def apply_step(grads, lr):
            """One update of weights, optimiser slots and EMA. If any weight or average comes out
            non-finite on any worker, all of it is restored from the pre-step copy (ok=False)."""
            flat_backup.assign(tf.concat([tf.reshape(v, [-1]) for v in flat], 0))
            for b, v in zip(other_backup, other):
                b.assign(v)
            lr_t = step_learning_rate(self.optimizer, cfg.optimizer, lr, cfg.resolved_beta2)
            self.optimizer.learning_rate.assign(lr_t)
            if cfg.weight_decay != 1.0:
                for v in self.tvars:
                    v.assign(v * cfg.weight_decay)
            self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
            self.ema.update()
            # one reduction per variable: a sum is non-finite if any element is (or if finite
            # weights sum past 3e38, which deserves a rollback as well)
            total = tf.add_n([tf.reduce_sum(v) for v in self.tvars + list(self.ema.shadow)])
            bad = tf.cast(~tf.math.is_finite(total), tf.float32)
            ok = tf.equal(dist.allreduce_sum(bad), 0.0)

            def roll_back():
                with tf.control_dependencies(restore()):
                    return tf.identity(ok)

            ok = tf.cond(ok, lambda: tf.identity(ok), roll_back)
            return lr_t, ok

        def eval_step(x, y, index):
            noise = default_noise(
                tf.shape(x), index, mix_seed(self.rank_seed, 0x74657374)
            )  # 'test'
            bits_x, bits_y, error = self.objective(x, y, noise)
            loss = bits_x + weight_y * bits_y
            return tf.stack(
                [
                    tf.reduce_sum(loss),
                    tf.reduce_sum(bits_x),
                    tf.reduce_sum(bits_y),
                    tf.reduce_sum(error),
                    tf.cast(tf.shape(x)[0], tf.float32),
                ]
            )

        # autograph=False: no tensor-dependent Python control flow here or in the model, and
        # AutoGraph's conversion of every layer call doubled the trace time (docs/performance.md)
        self.grad_step = tf.function(grad_step, reduce_retracing=True, autograph=False)
        self.apply_step = tf.function(apply_step, reduce_retracing=True, autograph=False)
        self.eval_step = tf.function(eval_step, reduce_retracing=True, autograph=False)

    # ================================================================== data
    def _augmented(self, ds, epoch):
        """ds of (x, y) batches -> the same with --dal augmentation of x, a stateless function of
        (seed, epoch, rank, batch index) so that a resumed run sees the same batches."""
        if not self.augmentation.active:
            return ds
        from glow_tf.data.augment import augment

        aug, stream = self.augmentation, mix_seed(self.cfg.seed, epoch, self.rank, 0x61756720)
        return ds.enumerate().map(
            lambda i, batch: (
                augment(batch[0], aug, tf.stack([tf.constant(stream % (2**62), tf.int64), i])),
                batch[1],
            )
        )

    def train_iterator(self, epoch, skip=0):
        """Batches of epoch `epoch`, rebuilt from (seed, epoch) and fast-forwarded by `skip`."""
        cfg = self.cfg
        ds = self.source.train(
            cfg.local_batch_train,
            rank=self.rank,
            size=self.size,
            seed=mix_seed(cfg.seed, epoch) % (2**31),
            repeat=True,
            shuffle=True,
        )
        ds = self._augmented(ds, epoch)
        if skip:
            ds = ds.skip(skip)
        return iter(ds)

    def init_batch(self):
        cfg = self.cfg
        ds = self.source.train(
            cfg.local_batch_init,
            rank=self.rank,
            size=self.size,
            seed=mix_seed(cfg.seed, 0x696E6974) % (2**31),
            repeat=True,
            shuffle=True,
        )
        x, y = next(iter(self._augmented(ds, -1)))
        return x, y

    def _next_batch(self, it):
        """next(it); a read error deep inside the data (e.g. a corrupt TFRecord payload) becomes a
        DataError naming the shard and record."""
        try:
            return next(it)
        except tf.errors.OpError as e:
            from glow_tf.data.tfrecords import describe_read_error

            raise describe_read_error(getattr(self.source, 'files', None), e) from None

    # ================================================================== state sync
    def _broadcast_all(self):
        variables = (
            list(self.model.variables)
            + list(self.optimizer.variables)
            + list(self.ema.shadow)
            + self.state.variables_list()
        )
        self.dist.broadcast_variables(variables, root_rank=0)

    def _load_counters(self):
        s = self.state.get()
        self.step, self.epoch, self.epoch_step = s['step'], s['epoch'], s['epoch_step']
        self.n_processed, self.n_images = s['n_processed'], s['n_images']
        self.best_test_loss, self.n_skipped = s['best_test_loss'], s['n_skipped']
        self.train_time = s['train_time']

    def _store_counters(self):
        self.state.set(
            step=self.step,
            epoch=self.epoch,
            epoch_step=self.epoch_step,
            n_processed=self.n_processed,
            n_images=self.n_images,
            best_test_loss=self.best_test_loss,
            n_skipped=self.n_skipped,
            train_time=self.train_time,
            world_size=self.size,
        )

    def save(self, best=False):
        """Rank 0: checkpoint at the current step (atomic; see checkpoint.py)."""
        self._store_counters()
        if not self.chief:
            return None
        manager = self.best_manager if best else self.manager
        if (
            not best
            and manager.latest_checkpoint
            and manager.latest_checkpoint.endswith(f'-{self.step}')
        ):
            return manager.latest_checkpoint
        path = recovery.write_checkpoint(manager, self.step)
        self._last_save_time = time.time()
        self.log.print(f"checkpoint{' (best)' if best else ''} step {self.step}: {path}")
        return path

    def initialize_or_restore(self):
        cfg = self.cfg
        if self.restore_prefix:
            if self.chief:
                # Inference needs neither the optimiser slots nor a matching optimiser.
                ckpt = (
                    ckpt_lib.make_checkpoint(self.model, self.ema, None, self.state)
                    if cfg.inference
                    else self.checkpoint
                )
                try:
                    status = ckpt.read(self.restore_prefix)
                except Exception as e:  # verified a moment ago; changed since
                    raise ConfigError(
                        '--logdir',
                        f"{self.restore_prefix} cannot be loaded "
                        f"({type(e).__name__}: {str(e)[:200]}); run again to fall "
                        "back to an older checkpoint",
                    ) from None
                status.expect_partial()
                try:
                    status.assert_existing_objects_matched()
                except AssertionError as e:
                    own = self.restore_prefix.startswith(self.logdir + os.sep)
                    raise ConfigError(
                        '--logdir' if own else '--restore_path',
                        f"{self.restore_prefix} does not match this model/optimiser "
                        f"(--optimizer {cfg.optimizer}): {str(e)[:300]}",
                    ) from None
            self._keep_best_on_disk()
            self._broadcast_all()
            self._load_counters()
            self.ema.set_num_updates(self.step - self.n_skipped)  # the warm-up continues
            self.use_ema = ckpt_lib.selected_weights(self.restore_prefix) == 'ema'
            if self.chief:
                if not cfg.inference:
                    self.log.truncate_after(self.step)
                self.log.print(
                    f"{'Restored' if cfg.inference else 'Resumed'} from "
                    f"{self.restore_prefix} at step {self.step} "
                    f"(epoch {self.epoch}, step {self.epoch_step}/{cfg.train_its})"
                )
                saved_size = int(self.state.vars['world_size'].numpy())
                if saved_size and saved_size != self.size:
                    self.log.warn(
                        f"checkpoint was written by {saved_size} workers, now {self.size}: "
                        "data sharding and iterations per epoch change"
                    )
            return True
        import glow_tf

        x, y = self.init_batch()
        xf = glow_tf.preprocess(x, int(cfg.n_bits_x), noise=False) + self.noise(
            tf.shape(x), -1
        ) / float(2 ** int(cfg.n_bits_x))
        with stage(
            f"data-dependent init on {x.shape[0]} images{' per worker' if self.size > 1 else ''}",
            enabled=self.chief and cfg.progress,
        ):
            self.model.initialize(
                xf, y if self.model.n_classes else None, reduce_mean=self.dist.allreduce_mean
            )
        self._keep_best_on_disk()
        self._broadcast_all()  # rank 0's values everywhere (stats were already averaged)
        self.ema.reset()
        self._load_counters()
        if self.chief and not cfg.inference:
            self.log.truncate_after(0)  # records of an attempt that never reached a checkpoint
        return False

    def _keep_best_on_disk(self):
        """Rank 0: best/ is replaced only by a better model, even when the restored checkpoint
        is older than the best one (a fallback) and remembers a worse best loss."""
        if self.chief and not self.cfg.inference:
            on_disk = recovery.best_loss_on_disk(os.path.join(self.logdir, ckpt_lib.BEST_SUBDIR))
            v = self.state.vars['best_test_loss']
            if on_disk < float(v.numpy()):
                v.assign(on_disk)

    # ================================================================== evaluation / samples
    def weights_in_use(self, use_ema):
        """Context: the model holds the Polyak averages (use_ema) or its raw weights."""
        return self.ema.swapped() if use_ema else contextlib.nullcontext()

    def evaluate(self, use_ema=False):
        """Full test pass over all workers with the raw or the averaged weights; a dict of
        loss, bits_x, bits_y, pred_loss (class error rate) and n_test."""
        cfg = self.cfg
        sums = tf.zeros([5], tf.float64)  # float64: sums over up to ~1e5 images stay exact
        with self.weights_in_use(use_ema):
            ds = self.source.test(cfg.local_batch_test, rank=self.rank, size=self.size)
            batches = progress_bar(
                ds.take(cfg.full_test_its),
                total=cfg.full_test_its,
                desc='test',
                enabled=self.chief and cfg.progress,
            )
            for i, (x, y) in enumerate(batches):
                sums += tf.cast(self.eval_step(x, y, tf.constant(i, tf.int64)), tf.float64)
        sums = self.dist.allreduce_sum(sums).numpy().astype(np.float64)
        n = max(sums[4], 1.0)
        return {
            'loss': sums[0] / n,
            'bits_x': sums[1] / n,
            'bits_y': sums[2] / n,
            'pred_loss': sums[3] / n,
            'n_test': int(sums[4]),
        }

    def run_test(self, tag='', record=True):
        """Full test pass with the raw and with the averaged weights; the better one is the run's
        result (its weights are used for samples, best/ and load_model). With `record`
        (training) log it and keep the best checkpoint."""
        t = time.time()
        raw = self.evaluate(use_ema=False)
        # before the first update the averages are the raw weights: one pass is enough
        ema = self.evaluate(use_ema=True) if int(self.ema.num_updates.numpy()) else raw
        self.use_ema = bool(ema['loss'] < raw['loss'])
        res, weights = (ema, 'ema') if self.use_ema else (raw, 'raw')
        improved = record and res['loss'] < self.best_test_loss
        if improved:
            self.best_test_loss = res['loss']
        rec = {
            'step': self.step,
            'epoch': self.epoch if self.epoch_step else self.epoch - 1,
            'loss': res['loss'],
            'bits_x': res['bits_x'],
            'bits_y': res['bits_y'],
            'n_test': res['n_test'],
            'best': bool(improved),
            'weights': weights,
            'ema': self.use_ema,
            'loss_raw': raw['loss'],
            'bits_x_raw': raw['bits_x'],
            'loss_ema': ema['loss'],
            'bits_x_ema': ema['bits_x'],
            'time': time.time() - t,
        }
        if self.model.n_classes:
            rec['pred_loss'] = res['pred_loss']
        if record:
            self.log.log_test(rec)
        y_part = (
            f" bits_y {res['bits_y']:.4f} class error {res['pred_loss']:.4f}"
            if self.model.n_classes
            else ''
        )
        self.log.print(
            f"test  step {self.step}: bits/dim {res['bits_x']:.4f} loss {res['loss']:.4f}"
            f"{y_part}{' *' if improved else ''} [{weights} weights; raw "
            f"{raw['bits_x']:.4f}, averaged {ema['bits_x']:.4f}] ({res['n_test']} images, "
            f"{time.time() - t:.1f}s){tag}"
        )
        if record and self.chief:
            choice = {
                k: rec[k]
                for k in ('step', 'weights', 'loss_raw', 'bits_x_raw', 'loss_ema', 'bits_x_ema')
            }
            ckpt_lib.write_weights_choice(self.logdir, 'latest', choice)
            if improved and self.step > 0:
                ckpt_lib.write_weights_choice(self.logdir, 'best', choice)
        if improved and self.step > 0:
            self.save(best=True)
        self.last_test_step = self.step
        self.result['test'] = rec
        return rec

    def draw_samples(self, tag, outdir=None):
        """Sample grids with the weights the last test pass chose (rank 0)."""
        if not self.chief:
            return []
        cfg = self.cfg
        outdir = outdir or os.path.join(self.logdir, 'samples')
        with self.weights_in_use(self.use_ema):
            paths = write_sample_grids(
                self.model,
                outdir,
                tag,
                int(cfg.n_bits_x),
                cfg.image_size,
                n_classes=self.model.n_classes,
                chunk=max(1, min(100, cfg.local_batch_train)),
                seed=cfg.seed,
                logger=self.log,
                step=self.step,
            )
        self.log.print(
            f"sample grids (T = {', '.join(os.path.basename(p)[len(tag) + 2 : -4] for p in paths)}): "
            f"{os.path.join(outdir, tag)}_t*.png"
        )
        return paths

    # ================================================================== training
    def run(self):
        self.setup()
        try:
            self.initialize_or_restore()
            if self.cfg.inference:
                return self.infer()
            return self.train()
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
            if isinstance(e, tf.errors.InvalidArgumentError) and 'glow_tf.data' not in str(e):
                raise  # not one of the data pipeline's own checks
            # a corrupt record met outside the step loop (init batch, test pass): name it
            from glow_tf.data.tfrecords import describe_read_error

            raise describe_read_error(getattr(self.source, 'files', None), e) from None
        finally:
            self.log.close()

    def infer(self):
        """--inference: evaluate, sample, and (as the original) write the encoded test set,
        LOGDIR/inference/x.npy (uint8 test images [N, H, W, C]) and z.npy (their latents,
        packed to [N, H, W, C] as in `glow_tf.tools.sampling`; decoding z gives x back exactly)."""
        res = self.run_test(tag=' [inference]', record=False)
        outdir = os.path.join(self.logdir, 'inference')
        paths = self.draw_samples(f'inference_step{self.step}', outdir)
        self.result.update({'inference': True, 'samples': paths})
        if self.chief:
            arrays = self.encode_test_set(outdir)
            ckpt_lib.write_json_atomic(
                os.path.join(outdir, 'result.json'),
                {
                    'test': res,
                    'samples': paths,
                    'arrays': arrays,
                    'checkpoint': self.restore_prefix,
                },
            )
            self.result['arrays'] = arrays
        return self.result

    def encode_test_set(self, outdir):
        """Rank 0: x.npy / z.npy of the n_test test images (see `infer`); returns their paths."""
        from glow_tf.tools.sampling import ModelFlow

        cfg = self.cfg
        flow = ModelFlow(self.model, n_bits_x=int(cfg.n_bits_x), batch_size=cfg.local_batch_test)
        xs, zs = [], []
        with self.weights_in_use(self.use_ema):
            for x, y in self.source.test(cfg.local_batch_test).take(
                cfg.n_test // cfg.local_batch_test
            ):
                xs.append(x.numpy())
                zs.append(flow.encode(xs[-1], y.numpy() if self.model.n_classes else None))
        paths = {'x': os.path.join(outdir, 'x.npy'), 'z': os.path.join(outdir, 'z.npy')}
        for key, arrays in (('x', xs), ('z', zs)):
            atomic_write_bytes(Path(paths[key]), lambda f: np.save(f, np.concatenate(arrays, 0)))
        self.log.print(f"encoded test set: {paths['x']}, {paths['z']}")
        return paths

    def _should_stop(self):
        cfg = self.cfg
        return (cfg.max_steps and self.step >= cfg.max_steps) or self.epoch > cfg.epochs

    def train(self):
        cfg, log = self.cfg, self.log
        self.last_test_step = -1
        log.print(
            f"glow_tf train: {self.size} worker(s) [{self.dist.backend}], problem {cfg.problem} "
            f"{cfg.image_size}x{cfg.image_size}, batch/worker {cfg.local_batch_train}, "
            f"{cfg.train_its} its/epoch, test {cfg.n_test} images, augmentation (--dal "
            f"{cfg.dal}): {self.augmentation.describe()}, logdir {self.logdir}"
        )
        log.hparams(cfg)
        if cfg.test_at_init and self.step == 0:
            self.run_test(tag=' [init]')
        self._last_save_time = time.time()
        with StopRequest() as stop:
            return self._train_loop(stop)

    def _train_loop(self, stop):
        """Steps until done; a stop request (SIGTERM/SIGINT on any worker) ends the loop after the
        current step with a checkpoint and StoppedBySignal."""
        cfg, log = self.cfg, self.log
        inject = set(int(s) for s in cfg.inject_nan_steps)
        inject_inf_lr = set(int(s) for s in cfg.inject_inf_lr_steps)  # tests: weight guard
        lr = cfg.learning_rate(self.n_processed)
        traced = False
        consecutive = 0
        acc = np.zeros(4)
        acc_n = 0
        interval_t, interval_images = 0.0, 0
        from tqdm import tqdm

        while not self._should_stop():
            it = self.train_iterator(self.epoch, skip=self.epoch_step)
            bar = tqdm(
                total=cfg.train_its,
                initial=self.epoch_step,
                desc=f'epoch {self.epoch}',
                disable=not (self.chief and cfg.progress),
                leave=False,
                dynamic_ncols=True,
                file=sys.stderr,
            )
            t_epoch = time.time()
            while self.epoch_step < cfg.train_its and not (
                cfg.max_steps and self.step >= cfg.max_steps
            ):
                t0 = time.time()
                x, y = self._next_batch(it)
                lr = cfg.learning_rate(self.n_processed)
                if not traced:
                    bar.set_postfix_str('tracing the training step (first step only)')
                grads, stats, finite = self.grad_step(
                    x,
                    y,
                    tf.constant(self.step, tf.int64),
                    tf.constant((self.step + 1) in inject),
                    tf.constant(float(stop.signum)),
                )
                stats = stats.numpy()
                stop_requested, stats = stats[4] > 0, stats[:4]
                applied = bool(finite.numpy())
                if applied:
                    step_lr = float('inf') if (self.step + 1) in inject_inf_lr else lr
                    _, ok = self.apply_step(grads, tf.constant(step_lr, tf.float32))
                    applied = bool(ok.numpy())
                    why = "the update made weights or their averages non-finite; rolled back"
                else:
                    why = f"non-finite loss/gradients (loss={float(stats[0])}); step skipped"
                if applied:
                    consecutive = 0
                    acc += stats
                    acc_n += 1
                else:
                    consecutive += 1
                    self.n_skipped += 1
                    log.warn(
                        f"step {self.step + 1}: {why} ({consecutive} in a row, limit "
                        f"--max_nonfinite {cfg.max_nonfinite})"
                    )
                    if consecutive >= cfg.max_nonfinite:
                        last = self.manager.latest_checkpoint if self.manager else None
                        raise NonFiniteLossError(
                            f"training stopped: {consecutive} consecutive steps with a non-finite "
                            f"loss or gradient (steps {self.step + 2 - consecutive}..{self.step + 1}). "
                            f"No update was applied for them; the last good checkpoint is "
                            f"{last or '(none written yet)'}. Lower --lr, raise --epochs_warmup or "
                            f"check the data."
                        )
                self.step += 1
                self.epoch_step += 1
                if applied:  # the warm-up clock: a skipped or rolled-back step does not move it
                    self.n_processed += self.size * cfg.n_batch_train
                self.n_images += self.size * cfg.local_batch_train
                dt = time.time() - t0
                self.train_time += dt
                if traced:  # the first step of a process includes tf.function tracing
                    interval_t += dt
                    interval_images += self.size * cfg.local_batch_train
                traced = True
                bar.update(1)
                if acc_n and (self.step % 10 == 0 or self.epoch_step == 1):
                    bar.set_postfix(bpd=f'{acc[1] / acc_n:.3f}', lr=f'{lr:.2e}')
                if cfg.log_every and self.step % cfg.log_every == 0:
                    self._log_train(acc, acc_n, lr, interval_t, interval_images)
                    acc, acc_n, interval_t, interval_images = np.zeros(4), 0, 0.0, 0
                # No checkpoint inside a run of non-finite steps: the last one stays the last
                # good one (weights are not updated by skipped steps, but the run may be dying).
                # (at an epoch's last step the end-of-epoch checkpoint follows, with its counters)
                mid_epoch = self.epoch_step < cfg.train_its and not consecutive
                if cfg.ckpt_every_steps and self.step % cfg.ckpt_every_steps == 0 and mid_epoch:
                    self.save()
                elif (
                    self.chief
                    and cfg.ckpt_every_minutes
                    and mid_epoch
                    and time.time() - self._last_save_time >= 60.0 * cfg.ckpt_every_minutes
                ):
                    self.save()
                if stop_requested:
                    bar.close()
                    # weights are finite (guarded); a skipped step changed nothing
                    path = self.save()
                    raise StoppedBySignal(stop.signum or signal.SIGTERM, self.step, path)
            bar.close()
            epoch_done = self.epoch_step >= cfg.train_its
            if acc_n or interval_images:
                self._log_train(acc, acc_n, lr, interval_t, interval_images)
                acc, acc_n, interval_t, interval_images = np.zeros(4), 0, 0.0, 0
            if not epoch_done:
                break  # max_steps reached mid-epoch
            e = self.epoch
            self.epoch += 1
            self.epoch_step = 0
            if e % cfg.epochs_full_valid == 0:
                self.run_test()
            if cfg.epochs_full_sample and (e in (1, 10) or e % cfg.epochs_full_sample == 0):
                self.draw_samples(f'epoch{e}')
            if not consecutive:
                self.save()
            log.print(f"epoch {e} done: step {self.step}, {time.time() - t_epoch:.1f}s")

        if self.last_test_step != self.step:
            self.run_test(tag=' [final]')
        self.save()
        self.result.update(
            {
                'step': self.step,
                'epoch': self.epoch,
                'n_skipped': self.n_skipped,
                'logdir': self.logdir,
            }
        )
        log.print(f"Finished at step {self.step}.")
        return self.result

    def _log_train(self, acc, acc_n, lr, interval_t, interval_images):
        mean = acc / max(acc_n, 1) if acc_n else np.full(4, np.nan)
        rec = {
            'step': self.step,
            'epoch': self.epoch - (1 if self.epoch_step == 0 else 0),
            'n_processed': self.n_processed,
            'n_images': self.n_images,
            'loss': mean[0],
            'bits_x': mean[1],
            'bits_y': mean[2],
            'lr': lr,
            'images_per_sec': interval_images / interval_t if interval_t > 0 else None,
            'n_skipped': self.n_skipped,
            'time': self.train_time,
        }
        if self.model.n_classes:
            rec['pred_loss'] = mean[3]
        self.result['train'] = rec
        self.log.log_train(rec)
        if self.cfg.verbose or not self.cfg.progress:
            self.log.print(
                f"train step {self.step} epoch {rec['epoch']}: bits/dim {mean[1]:.4f} "
                f"lr {lr:.2e} {rec['images_per_sec'] or 0:.1f} img/s"
            )
