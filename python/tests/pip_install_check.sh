#!/bin/sh
# CTest's python_pip_install: `pip install ./python` into a fresh virtual environment, offline (the
# build backend is in the tree and needs no index), then the installed package, imported from outside
# the tree with no ROPEJIT_LIBRARY, finds the libropejit.so the wheel carries and rotates a tensor.
# Usage: pip_install_check.sh PYTHON LIBROPEJIT SOURCE_DIR WORK_DIR
set -eu
py=$1 lib=$2 src=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
"$py" -m venv --system-site-packages "$work/venv"  # system numpy; ropejit itself only from the wheel
ROPEJIT_LIBRARY="$lib" "$work/venv/bin/python" -m pip install --no-index --quiet "$src/python"
cd "$work"
env -u ROPEJIT_LIBRARY -u PYTHONPATH "$work/venv/bin/python" - <<'PY'
import os, sys
import numpy as np
import ropejit
site = os.path.dirname(ropejit.__file__)
assert ropejit.library_path == os.path.join(site, "libropejit.so"), ropejit.library_path
assert "site-packages" in site, site
q = np.random.default_rng(1).uniform(-2, 2, (4, 2, 16)).astype(np.float32)
x = q.copy()
ropejit.apply_rope(q, None, 3)
y, _ = ropejit.apply_rope_backward(q, None, 3, inplace=False)
assert not np.allclose(q, x, atol=1e-3) and np.allclose(y, x, atol=1e-5)
print("pip install ./python: ropejit %s from %s works" % (ropejit.__version__, site))
PY
