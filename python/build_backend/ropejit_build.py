"""A PEP 517 build backend with no dependencies: a wheel of the pure-Python package ropejit/, plus
libropejit.so (from $ROPEJIT_LIBRARY, a file or its folder, else ../build next to this tree) copied
into the package, where ropejit looks first after $ROPEJIT_LIBRARY. Editable installs (pip install -e)
add this folder to sys.path instead."""
import base64
import hashlib
import os
import re
import sys
import sysconfig
import zipfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # python/
NAME = "ropejit"


def _version():
    with open(os.path.join(HERE, "pyproject.toml")) as f:
        return re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.M).group(1)


def _library():
    env = os.environ.get("ROPEJIT_LIBRARY")
    path = env if env else os.path.join(os.path.dirname(HERE), "build")
    if os.path.isdir(path):
        path = os.path.join(path, "libropejit.so")
    if os.path.isfile(path):
        return path
    sys.stderr.write("ropejit build: no libropejit.so at %s; the wheel holds none (set ROPEJIT_LIBRARY at run "
                     "time)\n" % path)
    return None


def _metadata(version):
    return ("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: RoPE kernels from ropejit's JIT (ctypes over "
            "its C API)\nRequires-Python: >=3.8\n" % (NAME, version))


def _write_wheel(directory, files, platform_specific):
    version = _version()
    tag = "py3-none-" + (sysconfig.get_platform().replace("-", "_").replace(".", "_") if platform_specific else "any")
    info = "%s-%s.dist-info" % (NAME, version)
    files = list(files) + [
        (info + "/METADATA", _metadata(version).encode()),
        (info + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: ropejit_build\nRoot-Is-Purelib: %s\nTag: %s\n"
                           % ("false" if platform_specific else "true", tag)).encode()),
    ]
    name = "%s-%s-%s.whl" % (NAME, version, tag)
    record = []
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, data in files:
            z.writestr(arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append("%s,sha256=%s,%d" % (arcname, digest, len(data)))
        record.append(info + "/RECORD,,")
        z.writestr(info + "/RECORD", "\n".join(record) + "\n")
    return name


def _package_files():
    pkg = os.path.join(HERE, NAME)
    for f in sorted(os.listdir(pkg)):
        if f.endswith(".py"):
            with open(os.path.join(pkg, f), "rb") as fh:
                yield "%s/%s" % (NAME, f), fh.read()


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = list(_package_files())
    lib = _library()
    if lib:
        with open(lib, "rb") as f:
            files.append(("%s/libropejit.so" % NAME, f.read()))
    return _write_wheel(wheel_directory, files, lib is not None)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, [("ropejit_editable.pth", (HERE + "\n").encode())], False)
