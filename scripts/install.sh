#!/usr/bin/env bash
# Install glow_tf and its pinned stack into the active Python (3.11).
#
#   bash scripts/install.sh          # CPU: tensorflow-cpu + TFP + Horovod (TF + Gloo)
#   GLOW_GPU=1 bash scripts/install.sh   # GPU: tensorflow[and-cuda] instead of tensorflow-cpu
#
# Idempotent: a second run checks the pinned versions and skips what is already there.
# Why the pins: horovod 0.28.1 builds against TF 2.15, 2.17 and 2.18 but not 2.19+ (TF's include
# tree lacks the highwayhash / llvm headers it needs), so TF stays at 2.18.1; TFP 0.25.0 is the
# release that matches TF 2.18 and imports its bijectors without tf-keras.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python}
TF_VERSION=2.18.1
TFP_VERSION=0.25.0
HOROVOD_VERSION=0.28.1
PIP="$PY -m pip install --disable-pip-version-check --no-input"

"$PY" - <<'PYEOF'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"glow_tf install: Python 3.11 is required, found {sys.version.split()[0]} ({sys.executable})")
PYEOF

have() {  # have MODULE VERSION -> 0 when MODULE imports with __version__ == VERSION
  "$PY" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('$1') == '$2' else 1)" 2>/dev/null
}

if [ "${GLOW_GPU:-0}" = "1" ]; then
  have tensorflow "$TF_VERSION" || $PIP "tensorflow[and-cuda]==$TF_VERSION"
else
  have tensorflow-cpu "$TF_VERSION" || have tensorflow "$TF_VERSION" || $PIP "tensorflow-cpu==$TF_VERSION"
fi

# TFP's package __init__ insists on tf_keras even though glow_tf only uses TF ops and Keras 3.
# tf-keras 2.18.0 declares a dependency on the full `tensorflow` wheel, which would install a
# second copy of TF beside tensorflow-cpu; it needs nothing else, so install it without deps.
have tf-keras 2.18.0 || $PIP --no-deps tf-keras==2.18.0

# The package itself (pins TFP, numpy, pillow, tqdm, tensorboard, flask, waitress, opencv, pytest, selenium
# through setup.py; re-run when a dependency added since the last install is missing).
# The install is editable and there is one per Python: when it points at another checkout, this
# one takes it over (import glow_tf and the glow-* commands then run this checkout's code) and
# says so on stderr; GLOW_KEEP_INSTALL=1 leaves it where it is. (The checks run from / so that
# the checkout's own glow_tf/ does not shadow the installed one.)
here=$PWD
installed=$(cd / && "$PY" -c "import glow_tf, os; print(os.path.dirname(os.path.dirname(os.path.realpath(glow_tf.__file__))))" 2>/dev/null || true)
other_checkout=0
if [ -n "$installed" ] && ! [ "$installed" -ef "$here" ]; then
  other_checkout=1
fi
if ! have glow_tf "$("$PY" -c "import re;print(re.search(r\"version='([^']+)'\", open('setup.py').read()).group(1))")" \
   || [ -z "$installed" ] \
   || [ "$other_checkout" = 1 ] \
   || ! "$PY" -c "import flask, waitress, cv2, selenium, imageio_ffmpeg" 2>/dev/null; then
  if [ "$other_checkout" = 1 ] && [ "${GLOW_KEEP_INSTALL:-0}" = "1" ]; then
    echo "glow_tf install: GLOW_KEEP_INSTALL=1: glow_tf stays installed from $installed and is" \
         "not reinstalled (scripts and tests run from $here still use this checkout's glow_tf/)" >&2
  else
    if [ "$other_checkout" = 1 ]; then
      echo "glow_tf install: RE-POINTING the editable install of glow_tf for $("$PY" -c 'import sys; print(sys.executable)')" \
           "from $installed to $here: import glow_tf and glow-train / glow-sample / glow-manipulate /" \
           "glow-demo will run this checkout's code. Run scripts/install.sh in $installed to point it" \
           "back, or use GLOW_KEEP_INSTALL=1 to leave the install alone." >&2
    fi
    $PIP -e ".[test]"
  fi
fi

# Horovod: compiled against the installed TF, so it must come after TF, without build isolation.
if ! have horovod "$HOROVOD_VERSION" || ! "$PY" -c "import horovod.tensorflow" 2>/dev/null; then
  if ! command -v cmake >/dev/null 2>&1; then
    echo "glow_tf install: horovod needs cmake < 4 to build; installing cmake 3.x from PyPI" >&2
    $PIP "cmake>=3.13,<4"
  fi
  $PIP packaging wheel
  HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
  HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
  CMAKE_POLICY_VERSION_MINIMUM=3.5 \
    $PIP --no-build-isolation --no-cache-dir "horovod==$HOROVOD_VERSION"
fi

# The face editor's browser test drives a real headless Chromium through Selenium: Debian's
# chromium + chromium-driver packages (the driver matches the browser). apt-get only when they
# are missing and we are root on a Debian-like system; elsewhere the test says what to install.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "glow_tf install: installing chromium and chromium-driver (editor browser test)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver
  else
    echo "glow_tf install: chromium/chromedriver not found; the editor's browser test will skip" \
         "(apt-get install chromium chromium-driver as root)" >&2
  fi
fi

# --- Debian packages: openssh-server (sshd + ssh client) for the multi-host launch test
# (tests/test_multihost.py starts its own sshd on loopback addresses). Skipped when present;
# apt-get only when root and missing.
if ! [ -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "glow_tf install: installing openssh-server (multi-host launch test)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server openssh-client \
      || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server openssh-client; }
  else
    echo "glow_tf install: openssh-server missing (not root): the multi-host test will be skipped" >&2
  fi
fi

"$PY" -c "import tensorflow as tf, tensorflow_probability as tfp, horovod.tensorflow as hvd, glow_tf; \
print(f'glow_tf install: tensorflow {tf.__version__}, tfp {tfp.__version__}, horovod {hvd.__version__ if hasattr(hvd, \"__version__\") else \"ok\"}')"
