"""Finds and loads libropejit.so, declares the C API's functions (ropejit_c.h) once, and turns their
error codes into ropejit.Error.

Search order (the first that exists wins):
  1. $ROPEJIT_LIBRARY: the library file, or a folder holding libropejit.so (or only its soname,
     libropejit.so.0, as scripts/stage-gpu carries it);
  2. the package's own folder (``pip install ./python`` copies a built libropejit.so there);
  3. the source tree, when the package is imported from <repo>/python: <repo>/build, then <repo>/.gpu;
  4. the dynamic loader's own search (LD_LIBRARY_PATH, an installed prefix known to ldconfig).
"""
import ctypes
import os

LIBRARY_NAME = "libropejit.so"
SONAME = "libropejit.so.0"  # what a folder may hold alone (a staged build, a runtime-only install)

# Error codes, one per ropejit::ErrorKind (ropejit_c.h).
OK = 0
KINDS = {1: "invalid argument", 2: "no device", 3: "unsupported", 4: "compile", 5: "driver", 6: "I/O",
         7: "internal"}


class Error(RuntimeError):
    """A failure ropejit reported; ``kind`` names its class ("invalid argument", "no device", ...),
    ``code`` is the C API's status. Nothing was written."""

    def __init__(self, message, kind="invalid argument", code=1):
        super().__init__(message)
        self.kind = kind
        self.code = code


def _in_folder(folder):
    path = os.path.join(folder, LIBRARY_NAME)
    return path if os.path.isfile(path) or not os.path.isfile(os.path.join(folder, SONAME)) else os.path.join(folder, SONAME)


def _candidates():
    env = os.environ.get("ROPEJIT_LIBRARY")
    if env:
        yield _in_folder(env) if os.path.isdir(env) else env
        return  # an explicit choice is never second-guessed
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, LIBRARY_NAME)
    repo = os.path.dirname(os.path.dirname(here))
    if os.path.isfile(os.path.join(repo, "include", "ropejit_c.h")):
        yield _in_folder(os.path.join(repo, "build"))
        yield _in_folder(os.path.join(repo, ".gpu"))
    yield SONAME


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.isfile(path):
            tried.append(path + " (not there)")
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("ropejit: libropejit.so not found; set ROPEJIT_LIBRARY to it. Tried: " + "; ".join(tried))


lib, path = _load()

_p = ctypes.c_void_p
_i32, _i64, _f64 = ctypes.c_int32, ctypes.c_int64, ctypes.c_double


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


def _declare(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


c_api_version = _declare("ropejit_c_api_version", _i32)
version = _declare("ropejit_version", ctypes.c_char_p)
last_error = _declare("ropejit_last_error", ctypes.c_char_p)
status_name = _declare("ropejit_status_name", ctypes.c_char_p, _i32)
options_init = _declare("ropejit_options_init", None, _p)
table_create = _declare("ropejit_table_create", _i32, DLDevice, _i64, _i64, _f64, DLDataType, _p)
table_wrap = _declare("ropejit_table_wrap", _i32, _p, _p, _p)
frequencies_create = _declare("ropejit_frequencies_create", _i32, DLDevice, _i64, _f64, _i32, _p)
table_destroy = _declare("ropejit_table_destroy", None, _p)
table_shape = _declare("ropejit_table_shape", _i32, _p, _p, _p)
# q, k, q_out, k_out, positions, table, options, stream
rope = _declare("ropejit_rope", _i32, _p, _p, _p, _p, _p, _p, _p, _p)
rope_backward = _declare("ropejit_rope_backward", _i32, _p, _p, _p, _p, _p, _p, _p, _p)
# q, k, q_out, k_out, q_weight, k_weight, positions, table, options, stream
qk_norm_rope = _declare("ropejit_qk_norm_rope", _i32, _p, _p, _p, _p, _p, _p, _p, _p, _p, _p)
rope_warm_up = _declare("ropejit_rope_warm_up", _i32, _p, _p, _p, _p, _p, _p, _p, _i32)
qk_norm_rope_warm_up = _declare("ropejit_qk_norm_rope_warm_up", _i32, _p, _p, _p, _p, _p, _p, _p, _p, _p)
# Prepared calls: rope's arguments + backward flag + out; the fused op's + out; then launches.
rope_prepare = _declare("ropejit_rope_prepare", _i32, _p, _p, _p, _p, _p, _p, _p, _i32, _p)
qk_norm_rope_prepare = _declare("ropejit_qk_norm_rope_prepare", _i32, _p, _p, _p, _p, _p, _p, _p, _p, _p, _p)
prepared_launch = _declare("ropejit_prepared_launch", _i32, _p, _p, _p)  # prepared, data, stream
prepared_destroy = _declare("ropejit_prepared_destroy", None, _p)

if c_api_version() < 2:
    raise ImportError("ropejit: %s has C API version %d; this package needs 2" % (path, c_api_version()))


def fail(status):
    """Raises the Error for a failed call's status (this thread's last error)."""
    raise Error(last_error().decode("utf-8", "replace"), KINDS.get(status, "internal"), status)
