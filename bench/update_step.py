"""The trainer's update step: the flat, guarded update against Keras's per-variable one.

    python bench/update_step.py                          # the README job's model and s_cifar128
    python bench/update_step.py --models readme --rounds 3 --steps 5

Three ways to apply one step's gradients, on the same Trainer, weights and batch:

- `flat`: what the trainer runs (`TrainSteps.apply_step`): Adamax, weight decay, the Polyak
  average and the finiteness verdict on flat [N] vectors, written only if finite;
- `keras_guarded`: what the trainer ran before: a pre-step copy of weights, slots and averages
  in one flat buffer, Keras's `apply_gradients` (one update per variable), the per-variable
  Polyak average, a per-variable finiteness sum (the rollback itself is not timed: it runs only
  after a bad step);
- `keras`: Keras's `apply_gradients` and the per-variable average alone, unguarded (a plain
  Keras training loop; the lower bound of the per-variable route).

For each: seconds to trace the update (`get_concrete_function`), the first run after tracing
(Grappler, kernel creation), operations in its graph, and the median ms of the update alone and
of a whole training step (the trainer's gradient step + that update), timed interleaved in
rounds. The gradient step hands the update one flat gradient [N]; the Keras variants split it
back into per-variable tensors (`FlatVariables.unflatten`: one split, a reshape per variable).
Prints a table, the CPU's vector units and one `JSON ` line per model. Pause long runs first:
read the ratios.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from bench.common import FULL_CASES, cpu_flags_line, dumps  # noqa: E402

P1 = {'p1_additive': 'a_additive', 'p1_affine': 'a_affine'}  # model -> bench/common.py case


def p1_model(case):
    """TrainConfig keyword arguments of a P1 case's model (bench/common.py FULL_CASES), with the
    plain 1x1 convolution: the case's LU form is there to match TFP's, the trainer's default is
    the plain one."""
    c = FULL_CASES[case]
    return dict(
        problem='cifar10',  # 32x32x3, the cases' image
        n_levels=c.levels,
        depth=c.depth,
        width=c.width,
        flow_coupling=int(c.coupling == 'affine'),
    )


# the README job's model (MNIST, class-conditional), the width-128 CIFAR model of issue 21 and
# the P1 cases' models (at the cases' batch, BATCH)
MODELS = {
    'readme': dict(
        problem='mnist', ycond=True, weight_y=0.05, n_levels=4, depth=8, width=64, learntop=True
    ),
    'cifar128': dict(problem='cifar10', n_levels=3, depth=8, width=128, flow_coupling=1),
    **{model: p1_model(case) for model, case in P1.items()},
    'tiny': dict(problem='mnist', image_size=8, n_levels=2, depth=2, width=8),  # the test's
}
BATCH = {model: FULL_CASES[case].batch for model, case in P1.items()}  # others: `batch`
VARIANTS = ('flat', 'keras_guarded', 'keras')


def trainer_config(model, batch=32, precision='fp32'):
    """TrainConfig keyword arguments of a MODELS model (also bench/revisions.py's trainer); the
    P1 models train at their own batch (BATCH)."""
    batch = BATCH.get(model, batch)
    return dict(
        MODELS[model],
        n_batch_train=batch,
        n_batch_init=batch,
        anchor_size=0,
        n_test=100,
        memory_mode='plain',
        precision=precision,
    )


def make_trainer(model, batch=32):
    from glow_tf.runs.config import TrainConfig
    from glow_tf.training.distributed import Distributed
    from glow_tf.training.trainer import Trainer

    cfg = TrainConfig(**trainer_config(model, batch), logdir=tempfile.mkdtemp(), progress=False)
    tr = Trainer(cfg, dist=Distributed(use_horovod=False)).setup()
    tr.initialize_or_restore()
    return tr


def keras_updates(tr):
    """{'keras_guarded', 'keras'}: the per-variable updates (module docstring), as tf.functions
    of (flat gradient [N], lr) -> lr_t."""
    import tensorflow as tf

    from glow_tf.training.optim import step_learning_rate
    from glow_tf.variables import FlatVariables, tf_variables

    c, opt, ema = tr.cfg, tr.optimizer, tr.ema
    state = FlatVariables(
        [
            v
            for v in tr.tvars + tf_variables(opt.variables) + list(ema.shadow)
            if v.dtype.is_floating
        ]
    )
    backup = tf.Variable(tf.zeros([state.size]), trainable=False)

    def keras(flat_grad):
        lr_t = step_learning_rate(opt, c.optimizer, tf.constant(1e-4), tr.plan.resolved_beta2)
        opt.learning_rate.assign(lr_t)
        grads = tr.steps.weights.unflatten(flat_grad)
        opt.apply_gradients(zip(grads, tr.model.trainable_variables))
        ema.update()
        return lr_t

    def keras_guarded(flat_grad):
        backup.assign(state.read())
        lr_t = keras(flat_grad)
        total = tf.add_n([tf.reduce_sum(v) for v in tr.tvars + list(ema.shadow)])
        return lr_t + 0.0 * tf.cast(~tf.math.is_finite(total), tf.float32)

    compile_ = lambda f: tf.function(f, autograph=False)
    return {'keras_guarded': compile_(keras_guarded), 'keras': compile_(keras)}


def measure(model, batch, rounds, steps):
    import tensorflow as tf

    tr = make_trainer(model, batch)
    x, y = next(tr.train_iterator(1))
    stop = tf.constant(0.0)
    grad = tr.grad_step(x, y, tf.constant(0, tf.int64), stop)[0]
    lr = tf.constant(1e-4)
    updates = {'flat': lambda g: tr.apply_step(g, lr)[0], **keras_updates(tr)}
    rows = {}
    for name in VARIANTS:
        fn = tr.apply_step if name == 'flat' else updates[name]
        args = (grad, lr) if name == 'flat' else (grad,)
        t0 = time.perf_counter()
        graph = fn.get_concrete_function(*args).graph
        t1 = time.perf_counter()
        updates[name](grad).numpy()
        t2 = time.perf_counter()
        rows[name] = {
            'trace_s': round(t1 - t0, 2),
            'first_run_s': round(t2 - t1, 2),
            'ops': len(graph.get_operations()),
        }
    update_ms = {n: [] for n in VARIANTS}
    step_ms = {n: [] for n in VARIANTS}
    for r in range(rounds):
        for name in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
            for i in range(steps):
                t0 = time.perf_counter()
                g = tr.grad_step(x, y, tf.constant(i, tf.int64), stop)[0]
                g.numpy()
                t1 = time.perf_counter()
                updates[name](g).numpy()
                t2 = time.perf_counter()
                update_ms[name].append(1000 * (t2 - t1))
                step_ms[name].append(1000 * (t2 - t0))
    for name in VARIANTS:
        rows[name]['update_ms'] = round(statistics.median(update_ms[name]), 2)
        rows[name]['step_ms'] = round(statistics.median(step_ms[name]), 2)
    return {
        'model': model,
        'batch': batch,
        'variables': len(tr.tvars),
        'weights': sum(int(v.shape.num_elements()) for v in tr.tvars),
        'rounds': rounds,
        'steps': steps,
        'variants': rows,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--models', default='readme,cifar128', help=f"of {sorted(MODELS)}")
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--rounds', type=int, default=4)
    p.add_argument('--steps', type=int, default=5, help="steps per round and variant")
    args = p.parse_args(argv)
    models = args.models.split(',')
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        p.error(f"--models: unknown {unknown}; expected some of {sorted(MODELS)}")
    print(cpu_flags_line())
    header = (
        "| model | update | trace s | first run s | graph ops | update ms | step ms | step / flat |"
    )
    print(header + "\n|" + "---|" * (header.count('|') - 1))
    results = []
    for model in models:
        res = measure(model, args.batch, args.rounds, args.steps)
        flat = res['variants']['flat']['step_ms']
        for name, row in res['variants'].items():
            print(
                f"| {model} ({res['variables']} variables) | {name} | {row['trace_s']} | "
                f"{row['first_run_s']} | {row['ops']:,} | {row['update_ms']} | {row['step_ms']} | "
                f"{row['step_ms'] / flat:.2f}x |"
            )
        print('JSON ' + dumps(res))
        results.append(res)
    return results


if __name__ == '__main__':
    main()
