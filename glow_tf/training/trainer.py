"""The Glow training loop: one program for 1 process and for `horovodrun -np N`.

    trainer = Trainer(config)          # an (unresolved) TrainConfig from the command line
    result = trainer.run()             # trains (or evaluates, with config.inference)

What one run does, on every worker unless noted:
 1. Horovod init + GPU pinning (`Distributed`), seeds rank + size * seed (as the original).
 2. Data source (`glow_tf.data.load_source`), config resolution and validation (per-worker batch
    sizes, iterations per epoch, beta2); rank 0 writes logdir/config.json.
 3. Model, optimiser (Adamax/Adam), Polyak EMA, the run's counters (counters.py); one
    tf.train.Checkpoint over them, and the compiled steps (steps.py).
 4. Resume from the newest checkpoint of logdir/checkpoints that really loads, or from
    --restore_path: rank 0 decides and reads it (run_checkpoints.py), then every variable is
    broadcast from rank 0. A log dir with a previous run but no loadable checkpoint is refused
    (ConfigError) unless --start_over. Otherwise data-dependent ActNorm init on n_batch_init
    images per worker with statistics averaged over all workers, then a broadcast from rank 0.
 5. Steps: loss = mean(bits_x) + weight_y * mean(bits_y) on dequantised images; gradients
    averaged by hvd.DistributedGradientTape (w.r.t. the tf.Variables behind the Keras ones);
    a step whose (global) loss or gradients are not finite is skipped on all workers alike, and
    one whose update leaves any weight or EMA average non-finite is rolled back (apply_step);
    `max_nonfinite` in a row stop training with NonFiniteLossError, leaving the last checkpoint.
    Skipped and rolled-back steps do not move the warm-up clock (n_processed).
    SIGTERM / SIGINT on any worker: all stop after the current step, rank 0 checkpoints, and
    StoppedBySignal is raised (stop.py). Checkpoints also every --ckpt_every_minutes.
 6. Each epoch (n_train images): train.jsonl record, checkpoint; every epochs_full_valid epochs
    a full test pass with the raw and with the EMA weights (allreduced; the better one is
    reported and recorded in weights.json), best checkpoint kept; sample grids at epochs 1, 10
    and every epochs_full_sample epochs (rank 0, the better weights of the last test pass).
Tests inject faults (--inject_nan_steps, --inject_inf_lr_steps) through faults.py; without them
the steps hold no injection op.

Exactly what resume restores: all model variables, the EMA averages, the optimiser slots and
iteration count, and the counters step / epoch / epoch_step / n_processed / n_images /
best_test_loss / n_skipped / train_time. The randomness needs no saved state: dequantisation
noise is a stateless function of (seed, rank, step), and each epoch's data stream is rebuilt from
(seed, epoch) and fast-forwarded past the `epoch_step` batches already consumed, so a resumed run
sees the same batches and noise as an uninterrupted one (exact for deterministic data sources;
bounded cost: at most one epoch of input reading).
"""

import gc
import os
import signal
import time

import numpy as np
import tensorflow as tf

from glow_tf.errors import ConfigError
from glow_tf.model.glow import Glow
from glow_tf.model.preprocessing import preprocess
from glow_tf.nets.precision import resolve_precision
from glow_tf.progress import progress_bar, stage
from glow_tf.runs import checkpoint_format as ckpt_lib
from glow_tf.runs.config import TrainConfig
from glow_tf.training import checkpoint_recovery as recovery
from glow_tf.training.counters import IntervalStats, RunCounters
from glow_tf.training.distributed import Distributed
from glow_tf.training.ema import EMA
from glow_tf.training.evaluation import TestPasses, test_line, test_record
from glow_tf.training.faults import FaultInjection
from glow_tf.training.logs import RunLogger
from glow_tf.training.optim import learning_rate, make_optimizer
from glow_tf.training.run_checkpoints import (
    RunCheckpoints,
    check_compatible,
    find_restore,
    is_warm_start,
    read_checkpoint,
)
from glow_tf.training.samples import write_sample_grids
from glow_tf.training.stats import STOP, TRAIN_STEP, unpack
from glow_tf.training.steps import TrainSteps, default_noise, mix_seed, rank_noise_seed
from glow_tf.training.stop import StoppedBySignal, StopRequest

__all__ = ['Trainer', 'NonFiniteLossError']


class NonFiniteLossError(RuntimeError):
    """Raised after `max_nonfinite` consecutive steps with a non-finite loss or gradient."""


class Trainer:
    """Trains (or, with `config.inference`, evaluates) one Glow run; see the module docstring.

    Args:
        config: a `TrainConfig` as the command line gives it (resolved and validated in `setup`).
        dist: the `Distributed` to use; default Horovod when importable, else one process.
        source: a data-API object (`glow_tf.data`); default `load_source(config.problem, ...)`.
        noise_fn: callable(shape, step) -> uniform [0, 1) dequantisation noise of the training
            steps; default a stateless function of (seed, rank, step) (tests replace it).
    """

    def __init__(self, config: TrainConfig, dist=None, source=None, noise_fn=None):
        self.cfg = config  # the flags until setup() resolves them (then never changed)
        self.plan = None  # the RunPlan setup() derives
        self.dist = dist or Distributed()
        self.source = source
        self._noise_fn = noise_fn
        self.result = {}

    # ================================================================== setup
    def setup(self):
        """Workers, data, resolved config + plan, resume decision, model, optimiser, EMA,
        counters, checkpoint writers and compiled steps (module docstring, 1.-3.). Returns
        self."""
        flags = self.cfg.validate_flags()
        dist = self.dist.init()
        self.rank, self.size = dist.rank, dist.size
        self.chief = dist.is_chief
        tf.random.set_seed(self.rank + self.size * flags.seed)
        np.random.seed((self.rank + self.size * flags.seed) % (2**32))
        if self.source is None:
            self.source = self._load_source(flags)
        src = self.source
        data = (src.image_shape, src.n_test, src.n_classes, dist.size)
        cfg, _ = flags.resolve(*data)
        self.logdir = os.path.abspath(os.path.expanduser(cfg.logdir))
        self.restore_prefix, notes, learntop_form = self._decide_restore(cfg)
        # not a flag: a run saved before glow_tf had the original's learntop keeps its own form
        self.cfg, self.plan = cfg, plan = flags.resolve(*data, learntop_form=learntop_form)
        self.rank_seed = rank_noise_seed(cfg.seed, self.rank)
        from glow_tf.data.problems import augmentation_for

        self.augmentation = augmentation_for(cfg.problem, cfg.dal)
        self.log = RunLogger(self.logdir, enabled=self.chief)
        for note in notes:
            self.log.warn(note)
        for note in plan.notes:
            self.log.print(f"note: {note}")
        if self.chief and not cfg.inference:
            os.makedirs(self.logdir, exist_ok=True)
            self.cfg.save(os.path.join(self.logdir, ckpt_lib.CONFIG_NAME), plan)
        self._build()
        return self

    @staticmethod
    def _load_source(flags):
        from glow_tf.data import load_source

        return load_source(
            flags.problem,
            data_dir=flags.data_dir or None,
            image_size=flags.image_size if flags.image_size > 0 else None,
            n_test=flags.n_test if flags.n_test > 0 else None,
            category=flags.category or None,
            skip_bad=bool(flags.skip_bad),
        )

    def _decide_restore(self, cfg):
        """(checkpoint prefix to restore or None, notes for the log, the checkpoint's
        learntop_form). Log dir check and resume decision on rank 0 (its view of the file
        system), shared with everyone so that an error stops every worker instead of leaving
        the others waiting."""
        restore, notes, error, learntop_form = None, [], None, cfg.learntop_form
        if self.chief:
            try:
                recovery.check_logdir(self.logdir)
                restore, notes = find_restore(self.logdir, cfg)
                if restore:
                    learntop_form = check_compatible(cfg, restore)
            except ConfigError as e:
                error = (e.flag, str(e)[len(e.flag) + 2 :])
        restore, error, learntop_form = self.dist.broadcast_object(
            (restore, error, learntop_form), 0
        )
        if error:
            raise ConfigError(*error)
        return restore, notes, learntop_form

    def _build(self):
        """Model, optimiser, EMA, counters, checkpoint and its writers, compiled steps."""
        import keras

        cfg = self.cfg
        # Identical initial weights on every worker and in every run with this seed (rank 0's
        # are broadcast anyway); per-worker randomness uses explicit stateless seeds instead.
        keras.utils.set_random_seed(int(cfg.seed) % (2**32))
        with stage(
            f"building the model ({cfg.n_levels} levels x {cfg.depth} steps, width {cfg.width})",
            enabled=self.chief and cfg.progress,
        ):
            self.model = Glow(**cfg.to_model_kwargs())
            self.optimizer = make_optimizer(cfg, self.plan)
            self.optimizer.build(self.model.trainable_variables)
        self.ema = EMA(self.model.trainable_variables, self.plan.resolved_beta2)
        self.counters = RunCounters()
        self.checkpoint = ckpt_lib.make_checkpoint(
            self.model, self.ema, self.optimizer, self.counters.state
        )
        self.ckpts = RunCheckpoints(
            self.logdir, self.checkpoint, cfg.keep_checkpoints, self.log, enabled=self.chief
        )
        self.use_ema = True  # the weights for samples until a test pass has compared both
        self.faults = FaultInjection.from_config(cfg)  # None outside the reliability tests
        self.steps = TrainSteps(
            self.model,
            self.optimizer,
            self.ema,
            self.dist,
            cfg,
            self.plan,
            noise=self.noise,
            eval_seed=mix_seed(self.rank_seed, 0x74657374),  # 'test'
            loss_hook=self.faults.loss if self.faults else None,
        )
        self.tvars = self.steps.tvars
        self.grad_step, self.apply_step = self.steps.grad_step, self.steps.apply_step
        self.eval_step = self.steps.eval_step
        self.tests = TestPasses(
            self.model, self.ema, self.source, self.eval_step, self.dist, cfg, self.plan
        )

    def noise(self, shape, step):
        """The training steps' dequantisation noise u ~ U[0, 1) of `shape` for `step`."""
        if self._noise_fn is not None:
            return self._noise_fn(shape, step)
        return default_noise(shape, step, self.rank_seed)

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
            self.plan.local_batch_train,
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
            self.plan.local_batch_init,
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

    # ================================================================== checkpoints
    def save(self, best=False):
        """Rank 0: checkpoint at the current step (atomic; see run_checkpoints.py); its path."""
        return self.ckpts.save(self.counters.step, best=best)

    def initialize_or_restore(self):
        """Restore `restore_prefix` (rank 0 reads, all receive rank 0's values; True) or
        initialise the model from data (False). Counters, EMA warm-up and weights choice follow."""
        cfg, c = self.cfg, self.counters
        if not self.restore_prefix:
            self._initialize()
            return False
        if is_warm_start(cfg, self.restore_prefix):
            self.warm_start()
            return False
        if self.chief:
            # Inference needs neither the optimiser slots nor a matching optimiser.
            optimizer = None if cfg.inference else self.optimizer
            ckpt = ckpt_lib.make_checkpoint(
                self.model, self.ema, optimizer, c.state, reading=self.restore_prefix
            )
            read_checkpoint(ckpt, self.restore_prefix, self.logdir, cfg)
        self._share_rank0_state()
        self.ema.set_num_updates(c.step - c.n_skipped)  # the warm-up continues
        self.use_ema = ckpt_lib.selected_weights(self.restore_prefix) == 'ema'
        if self.chief:
            if not cfg.inference:
                self.log.truncate_after(c.step)
            self.log.print(
                f"{'Restored' if cfg.inference else 'Resumed'} from "
                f"{self.restore_prefix} at step {c.step} "
                f"(epoch {c.epoch}, step {c.epoch_step}/{self.plan.train_its})"
            )
            if c.world_size and c.world_size != self.size:
                self.log.warn(
                    f"checkpoint was written by {c.world_size} workers, now {self.size}: "
                    "data sharding and iterations per epoch change"
                )
        c.world_size = self.size
        return True

    def warm_start(self):
        """--restore_path into a new log dir: rank 0 reads the checkpoint's model variables and
        its raw or Polyak-averaged weights (--restore_weights; 'auto': the ones that scored
        better in that run), then every worker gets them; the counters, optimiser, learning-rate
        warm-up and averages start fresh (the averages from the loaded weights)."""
        cfg, prefix = self.cfg, self.restore_prefix
        which = cfg.restore_weights
        if which == 'auto':
            which = ckpt_lib.selected_weights(prefix)
        if self.chief:
            groups = ckpt_lib.list_groups(prefix)
            if which == 'ema' and 'ema' not in groups:
                raise ConfigError(
                    '--restore_weights', f"ema: {prefix} holds no Polyak averages; use raw"
                )
            ema = self.ema if which == 'ema' else None
            ckpt = ckpt_lib.make_checkpoint(self.model, ema, reading=prefix)
            read_checkpoint(ckpt, prefix, self.logdir, cfg)
            if which == 'ema':
                self.ema.copy_to_model()
        self._share_rank0_state()
        self.ema.reset()
        self.counters.world_size = self.size
        if self.chief:
            self.log.truncate_after(0)
            self.log.print(f"Warm start from {prefix} ({which} weights); step 0, fresh optimiser")

    def _initialize(self):
        """Data-dependent init on n_batch_init images per worker (statistics averaged over the
        workers), then rank 0's values everywhere and a fresh EMA."""
        cfg = self.cfg
        x, y = self.init_batch()
        xf = preprocess(x, int(cfg.n_bits_x), noise=self.noise(tf.shape(x), -1))
        with stage(
            f"data-dependent init on {x.shape[0]} images{' per worker' if self.size > 1 else ''}",
            enabled=self.chief and cfg.progress,
        ):
            self.model.initialize(
                xf, y if self.model.n_classes else None, reduce_mean=self.dist.allreduce_mean
            )
        self._share_rank0_state()  # (init statistics were already averaged)
        self.ema.reset()
        self.counters.world_size = self.size
        if self.chief and not cfg.inference:
            self.log.truncate_after(0)  # records of an attempt that never reached a checkpoint

    def _share_rank0_state(self):
        """best/'s loss on disk into the counters (training), then every variable from rank 0."""
        if not self.cfg.inference:
            self.ckpts.keep_best_on_disk(self.counters)
        variables = (
            list(self.model.variables)
            + list(self.optimizer.variables)
            + list(self.ema.shadow)
            + self.counters.variables
        )
        self.dist.broadcast_variables(variables, root_rank=0)

    # ================================================================== evaluation / samples
    def run_test(self, tag='', record=True):
        """Full test pass with the raw and with the averaged weights (`evaluation.TestPasses`);
        the better one is the run's result (its weights are used for samples, best/ and
        load_model). With `record` (training) log it and keep the best checkpoint."""
        t = time.time()
        raw = self.tests.evaluate(use_ema=False)
        # before the first update the averages are the raw weights: one pass is enough
        ema = self.tests.evaluate(use_ema=True) if int(self.ema.num_updates.numpy()) else raw
        self.use_ema = bool(ema['loss'] < raw['loss'])
        c = self.counters
        loss = (ema if self.use_ema else raw)['loss']
        improved = record and loss < c.best_test_loss
        if improved:
            c.best_test_loss = loss
        epoch = c.epoch if c.epoch_step else c.epoch - 1
        rec = test_record(c.step, epoch, raw, ema, improved, time.time() - t, self.model.n_classes)
        if record:
            self.log.log_test(rec)
        self.log.print(test_line(rec, tag))
        if record and self.chief:
            choice = {
                k: rec[k]
                for k in ('step', 'weights', 'loss_raw', 'bits_x_raw', 'loss_ema', 'bits_x_ema')
            }
            ckpt_lib.write_weights_choice(self.logdir, 'latest', choice)
            if improved and c.step > 0:
                ckpt_lib.write_weights_choice(self.logdir, 'best', choice)
        if improved and c.step > 0:
            self.save(best=True)
        self.last_test_step = c.step
        self.result['test'] = rec
        return rec

    def draw_samples(self, tag, outdir=None):
        """Sample grids with the weights the last test pass chose (rank 0)."""
        if not self.chief:
            return []
        cfg = self.cfg
        outdir = outdir or os.path.join(self.logdir, 'samples')
        with self.tests.weights(self.use_ema):
            paths = write_sample_grids(
                self.model,
                outdir,
                tag,
                int(cfg.n_bits_x),
                cfg.image_size,
                n_classes=self.model.n_classes,
                chunk=max(1, min(100, self.plan.local_batch_train)),
                seed=cfg.seed,
                logger=self.log,
                step=self.counters.step,
            )
        temperatures = ', '.join(os.path.basename(p)[len(tag) + 2 : -4] for p in paths)
        self.log.print(f"sample grids (T = {temperatures}): {os.path.join(outdir, tag)}_t*.png")
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
        packed to [N, H, W, C] as in `glow_tf.model.latents`; decoding z gives x back exactly)."""
        res = self.run_test(tag=' [inference]', record=False)
        outdir = os.path.join(self.logdir, 'inference')
        paths = self.draw_samples(f'inference_step{self.counters.step}', outdir)
        self.result.update({'inference': True, 'samples': paths})
        if self.chief:
            arrays = self.tests.encode_test_set(outdir, self.use_ema)
            self.log.print(f"encoded test set: {arrays['x']}, {arrays['z']}")
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

    def _should_stop(self):
        cfg, c = self.cfg, self.counters
        return (cfg.max_steps and c.step >= cfg.max_steps) or c.epoch > cfg.epochs

    def train(self):
        """Trains until --epochs or --max_steps (module docstring, 5.-6.); the result dict."""
        cfg, log = self.cfg, self.log
        self.last_test_step = -1
        log.print(
            f"glow_tf train: {self.size} worker(s) [{self.dist.backend}], problem {cfg.problem} "
            f"{cfg.image_size}x{cfg.image_size}, batch/worker {self.plan.local_batch_train}, "
            f"{self.plan.train_its} its/epoch, test {cfg.n_test} images, augmentation (--dal "
            f"{cfg.dal}): {self.augmentation.describe()}, coupling networks in "
            f"{resolve_precision(cfg.precision)}"
            + (" (--precision auto)" if cfg.precision == 'auto' else '')
            + f", logdir {self.logdir}"
        )
        log.hparams(cfg, self.plan)
        if cfg.test_at_init and self.counters.step == 0:
            self.run_test(tag=' [init]')
        self.ckpts.last_save_time = time.time()
        with StopRequest() as stop:
            return self._train_loop(stop)

    def _train_loop(self, stop):
        """Epochs until done; a stop request (SIGTERM/SIGINT on any worker) ends the loop after
        the current step with a checkpoint and StoppedBySignal."""
        cfg, c = self.cfg, self.counters
        self._interval = IntervalStats()  # the loss and throughput of the logging interval
        self._nonfinite = 0  # consecutive steps skipped or rolled back as non-finite
        self._lr = learning_rate(cfg, self.plan, c.n_processed)  # the last step's learning rate
        self._traced = False  # the first step of a process includes tf.function tracing
        while not self._should_stop():
            t_epoch = time.time()
            epoch_done = self._train_epoch(stop)
            if not self._interval.empty:
                self._log_train()
            if not epoch_done:
                break  # max_steps reached mid-epoch
            self._end_epoch(t_epoch)
        if self.last_test_step != c.step:
            self.run_test(tag=' [final]')
        self.save()
        self.result.update(
            {'step': c.step, 'epoch': c.epoch, 'n_skipped': c.n_skipped, 'logdir': self.logdir}
        )
        self.log.print(f"Finished at step {c.step}.")
        return self.result

    def _train_epoch(self, stop):
        """Steps of the epoch in progress from its `epoch_step` on; True if it is complete."""
        cfg, c = self.cfg, self.counters
        it = self.train_iterator(c.epoch, skip=c.epoch_step)
        with progress_bar(
            total=self.plan.train_its,
            initial=c.epoch_step,
            desc=f'epoch {c.epoch}',
            enabled=self.chief and cfg.progress,
        ) as bar:
            while c.epoch_step < self.plan.train_its and not (
                cfg.max_steps and c.step >= cfg.max_steps
            ):
                stop_requested = self._train_step(it, stop.signum, bar)
                self._checkpoint_if_due()
                if stop_requested:
                    bar.close()
                    path = self.save()  # weights are finite (guarded); a skip changed nothing
                    raise StoppedBySignal(stop.signum or signal.SIGTERM, c.step, path)
        return c.epoch_step >= self.plan.train_its

    def _train_step(self, it, signum, bar):
        """One step on the next batch: gradients, guarded update or skip, counters, progress
        and the interval log. True when a worker asked to stop (`signum` on this one)."""
        cfg, c = self.cfg, self.counters
        t0 = time.time()
        x, y = self._next_batch(it)
        step, epoch_step = c.step, c.epoch_step  # 0-based: this is step number step + 1
        self._lr = lr = learning_rate(cfg, self.plan, c.n_processed)
        inputs = (x, y, tf.constant(step, tf.int64), tf.constant(float(signum)))
        update_traced = None
        if not self._traced:
            bar.set_postfix_str('tracing the training step (first step only)')
            update_traced = self.steps.trace_first_step(*inputs)
        grads, stats, finite = self.grad_step(*inputs)
        stats, _ = unpack(TRAIN_STEP, stats.numpy())
        stop_requested = stats[STOP] > 0
        applied = bool(finite.numpy())
        if update_traced:
            update_traced()
        if applied:
            step_lr = self.faults.learning_rate(lr, step + 1) if self.faults else lr
            _, ok = self.apply_step(grads, tf.constant(step_lr, tf.float32))
            applied = bool(ok.numpy())
            why = "the update made weights or their averages non-finite; rolled back"
        else:
            why = f"non-finite loss/gradients (loss={stats['loss']}); step skipped"
        # --precision fp16: a finite loss with overflowing scaled gradients lowers the loss scale
        overflow = not applied and self.steps.loss_scale is not None and np.isfinite(stats['loss'])
        if applied:
            self._nonfinite = 0
            self._interval.add_step(stats)
        elif overflow:
            self.counters.n_skipped += 1
            self.log.print(
                f"step {step + 1}: float16 gradients overflowed; step skipped, loss scale now "
                f"{float(self.steps.loss_scale.scale.numpy()):g}"
            )
        else:
            self._note_nonfinite(step + 1, why)
        images = self.size * self.plan.local_batch_train
        dt = time.time() - t0
        # the warm-up clock (n_processed): a skipped or rolled-back step does not move it
        warmup = {'n_processed': self.size * cfg.n_batch_train} if applied else {}
        c.add(step=1, epoch_step=1, n_images=images, train_time=dt, **warmup)
        if self._traced:  # the first step of a process includes tf.function tracing
            self._interval.add_time(dt, images)
        else:
            # Tracing left millions of long-lived Python objects (the step's graphs): move them
            # out of the cyclic garbage collector's view, whose full passes over them otherwise
            # stall the loop for seconds at random steps (gc.freeze, Python's documented remedy).
            gc.freeze()
        self._traced = True
        if cfg.verbose and self.chief:  # as the original's --verbose: a line per step
            self.log.print(
                f"step {c.step} epoch {c.epoch}: loss {stats['loss']:.4f} bits/dim "
                f"{stats['bits_x']:.4f} lr {lr:.2e} {1000 * dt:.0f} ms"
                + ('' if applied else ' (skipped)')
            )
        bar.update(1)
        if self._interval.n_steps and ((step + 1) % 10 == 0 or epoch_step == 0):
            bar.set_postfix(bpd=f"{self._interval.means()['bits_x']:.3f}", lr=f'{lr:.2e}')
        if cfg.log_every and (step + 1) % cfg.log_every == 0:
            self._log_train()
        return stop_requested

    def _note_nonfinite(self, number, why):
        """Step `number` was skipped or rolled back: warn; NonFiniteLossError at the limit."""
        cfg = self.cfg
        self._nonfinite += 1
        self.counters.n_skipped += 1
        n = self._nonfinite
        self.log.warn(
            f"step {number}: {why} ({n} in a row, limit --max_nonfinite {cfg.max_nonfinite})"
        )
        if n >= cfg.max_nonfinite:
            raise NonFiniteLossError(
                f"training stopped: {n} consecutive steps with a non-finite "
                f"loss or gradient (steps {number + 1 - n}..{number}). "
                f"No update was applied for them; the last good checkpoint is "
                f"{self.ckpts.latest or '(none written yet)'}. Lower --lr, raise --epochs_warmup "
                f"or check the data."
            )

    def _checkpoint_if_due(self):
        """Mid-epoch checkpoints, every --ckpt_every_steps or after --ckpt_every_minutes (rank 0's
        clock). None inside a run of non-finite steps: the last one stays the last good one
        (weights are not updated by skipped steps, but the run may be dying), and none at an
        epoch's last step (the end-of-epoch checkpoint follows, with its counters)."""
        cfg, c = self.cfg, self.counters
        if c.epoch_step >= self.plan.train_its or self._nonfinite:
            return
        if cfg.ckpt_every_steps and c.step % cfg.ckpt_every_steps == 0:
            self.save()
        elif (
            self.chief
            and cfg.ckpt_every_minutes
            and self.ckpts.minutes_since_save() >= cfg.ckpt_every_minutes
        ):
            self.save()

    def _end_epoch(self, t_epoch):
        """The epoch in progress is complete: test pass, sample grids, checkpoint."""
        cfg, c = self.cfg, self.counters
        e = c.epoch
        c.epoch, c.epoch_step = e + 1, 0
        if e % cfg.epochs_full_valid == 0:
            self.run_test()
        if cfg.epochs_full_sample and (e in (1, 10) or e % cfg.epochs_full_sample == 0):
            self.draw_samples(f'epoch{e}')
        if not self._nonfinite:
            self.save()
        self.log.print(f"epoch {e} done: step {c.step}, {time.time() - t_epoch:.1f}s")

    def _log_train(self):
        """A train.jsonl record of the interval so far (then a new interval)."""
        cfg, c, interval = self.cfg, self.counters, self._interval
        mean, lr = interval.means(), self._lr
        rec = {
            'step': c.step,
            'epoch': c.epoch - (1 if c.epoch_step == 0 else 0),
            'n_processed': c.n_processed,
            'n_images': c.n_images,
            'loss': mean['loss'],
            'bits_x': mean['bits_x'],
            'bits_y': mean['bits_y'],
            'lr': lr,
            'images_per_sec': interval.images_per_sec(),
            'n_skipped': c.n_skipped,
            'time': c.train_time,
        }
        if self.model.n_classes:
            rec['pred_loss'] = mean['error']
        interval.reset()
        self.result['train'] = rec
        self.log.log_train(rec)
        if cfg.verbose or not cfg.progress:
            self.log.print(
                f"train step {c.step} epoch {rec['epoch']}: bits/dim {mean['bits_x']:.4f} "
                f"lr {lr:.2e} {rec['images_per_sec'] or 0:.1f} img/s"
            )
