#!/usr/bin/env bash
# Reproduces the pictures in docs/images/ (see docs/manipulation.md): train a small Glow on the
# CelebA subset at 32x32 on the CPU (~7.5 minutes of training on 2 cores), compute the 40
# attribute directions, edit held-out faces, interpolate, sample.
#
#   bash docs/images/make_demo.sh                 # everything
#   SKIP_TRAIN=1 bash docs/images/make_demo.sh    # reuse $WORK/celeba32
#
# DATA: the CelebA subset (list_attr_celeba.txt + img_align_celeba_89x109/); WORK: scratch dir.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data/celeba-subset}
WORK=${WORK:-/tmp/glow_demo}
OUT=docs/images
IMG=$DATA/img_align_celeba_89x109
mkdir -p "$WORK"

if [ -z "${SKIP_TRAIN:-}" ]; then
  # 600 steps of 32 images; the first 90% of the subset (8,100 faces) is the training split.
  python train.py --problem celeba --data_dir "$DATA" --image_size 32 \
    --n_levels 3 --depth 8 --width 128 --flow_coupling 0 \
    --n_batch_train 32 --n_batch_init 128 --n_test 500 --n_batch_test 50 \
    --n_train 3200 --epochs_warmup 1 --max_steps 600 --memory_mode plain \
    --ckpt_every_steps 100 --epochs_full_valid 4 --epochs_full_sample 100 \
    --logdir "$WORK/celeba32" --no_progress
fi

# Directions from the labelled training split only (the first 8,100 images).
python manipulate.py directions --model "$WORK/celeba32" \
  --attr_file "$DATA/list_attr_celeba.txt" --image_dir "$IMG" --n_images 8100 --batch 100 \
  --out "$WORK/directions.npz"

# Held-out faces (test split: 008101.jpg and later).
FACES="$IMG/008201.jpg $IMG/008305.jpg $IMG/008420.jpg"
for attr in Smiling Male; do
  python manipulate.py edit --model "$WORK/celeba32" --directions "$WORK/directions.npz" \
    --attribute $attr --strengths -2 -1 -0.5 0 0.5 1 2 --images $FACES --with_input \
    --out "$WORK/edit_$attr.png"
done
python manipulate.py interpolate --model "$WORK/celeba32" \
  --images "$IMG/008201.jpg" "$IMG/008420.jpg" --n 8 --out "$WORK/interpolate.png"
python sample.py --model "$WORK/celeba32" --n 16 --cols 8 --temperature 0.7 --seed 0 \
  --out "$WORK/samples_t0.7.png"

# 32x32 images are tiny: enlarge 3x with nearest-neighbour (no smoothing) for the docs.
python - "$WORK" "$OUT" <<'EOF'
import sys
from PIL import Image
work, out = sys.argv[1:3]
for src, dst in [('edit_Smiling', 'celeba32_edit_smiling'), ('edit_Male', 'celeba32_edit_male'),
                 ('interpolate', 'celeba32_interpolate'), ('samples_t0.7', 'celeba32_samples_t0.7')]:
    im = Image.open(f'{work}/{src}.png')
    im.resize((im.width * 3, im.height * 3), Image.NEAREST).save(f'{out}/{dst}.png', optimize=True)
    print(f'{out}/{dst}.png')
EOF
