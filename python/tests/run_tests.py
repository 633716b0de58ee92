"""CTest's entry to the Python tests (CPU backend): every test_*.py here through unittest. Exits 77
(CTest's skip) only when numpy, which the references need, cannot be imported, saying so."""
import os
import sys
import unittest

try:
    import numpy  # noqa: F401
except ImportError as e:
    print("Python tests SKIPPED: numpy is not available to %s (%s); install python3-numpy" % (sys.executable, e))
    sys.exit(77)

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
suite = unittest.defaultTestLoader.discover(here, pattern=sys.argv[1] if len(sys.argv) > 1 else "test_*.py")
result = unittest.TextTestRunner(verbosity=2).run(suite)
failed = len(result.failures) + len(result.errors)
print("python tests: %d passed, %d failed, %d skipped" % (result.testsRun - failed - len(result.skipped), failed,
                                                          len(result.skipped)))
sys.exit(0 if result.wasSuccessful() else 1)
