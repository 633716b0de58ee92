"""The package as installed: the wheel the in-tree build backend makes holds libropejit.so and the
package finds it there; ROPEJIT_LIBRARY wins over every other place, and a bad one is an ImportError
naming it. (A real `pip install ./python` into a venv is CTest's python_pip_install.)"""
import os
import subprocess
import sys
import tempfile
import unittest
import zipfile

import ropejit

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code, env, cwd=None):
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


class TestPackage(unittest.TestCase):
    def test_wheel_bundles_the_library(self):
        sys.path.insert(0, os.path.join(PYTHON_DIR, "build_backend"))
        import ropejit_build

        with tempfile.TemporaryDirectory() as tmp:
            os.environ["ROPEJIT_LIBRARY"] = ropejit.library_path
            name = ropejit_build.build_wheel(tmp)
            self.assertRegex(name, r"^ropejit-[0-9.]+-py3-none-linux_\w+\.whl$")
            with zipfile.ZipFile(os.path.join(tmp, name)) as z:
                names = z.namelist()
                self.assertIn("ropejit/libropejit.so", names)
                self.assertIn("ropejit/__init__.py", names)
                z.extractall(os.path.join(tmp, "site"))
            env = {k: v for k, v in os.environ.items() if k not in ("ROPEJIT_LIBRARY", "PYTHONPATH")}
            env["PYTHONPATH"] = os.path.join(tmp, "site")
            r = _run("import numpy as np, ropejit; print(ropejit.library_path);"
                     "q = np.ones((2, 1, 8), np.float32); ropejit.apply_rope(q, None, 1); print(q[1, 0, 0] != 1)", env, cwd=tmp)
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = r.stdout.split()
            self.assertEqual(lines[0], os.path.join(tmp, "site", "ropejit", "libropejit.so"))
            self.assertEqual(lines[1], "True")

    def test_bad_library_variable(self):
        env = dict(os.environ, ROPEJIT_LIBRARY="/nonexistent/libropejit.so", PYTHONPATH=PYTHON_DIR)
        r = _run("import ropejit", env, cwd=PYTHON_DIR)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ImportError", r.stderr)
        self.assertIn("/nonexistent/libropejit.so (not there)", r.stderr)

    def test_version(self):
        self.assertRegex(ropejit.__version__, r"^\d+\.\d+\.\d+$")
