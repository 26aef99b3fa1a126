"""Builds the oneDNN convolution custom call: `python -m denoise_jax.ops.build [--force]`.

Compiles `csrc/onednn_conv.cc` with g++ against JAX's FFI headers and the oneDNN headers
and library pip installs into this environment (`onednn-devel` puts them under
`sys.prefix/include` and `sys.prefix/lib`; Debian's `libdnnl-dev` under /usr also works;
`DENOISE_JAX_ONEDNN_ROOT=PREFIX` picks PREFIX/include and PREFIX/lib first).
The result goes to `denoise_jax/ops/_build/` (ignored by git), with `build.json` recording
how it was made. Idempotent: nothing is rebuilt while the source, compiler command and
oneDNN library are unchanged. Always exits 0 and prints one line: without the library the
package simply uses XLA's convolution.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "csrc" / "onednn_conv.cc"
BUILD_DIR = HERE / "_build"
LIBRARY = BUILD_DIR / "libdj_onednn.so"
INFO = BUILD_DIR / "build.json"

_RUNTIMES = {"DNNL_RUNTIME_OMP": "omp", "DNNL_RUNTIME_TBB": "tbb", "DNNL_RUNTIME_SEQ": "seq",
             "DNNL_RUNTIME_THREADPOOL": "threadpool"}


def find_onednn() -> tuple[Path, Path] | None:
    """(include dir, lib dir) of an installed oneDNN (headers and libdnnl.so), or None."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
    root = os.environ.get("DENOISE_JAX_ONEDNN_ROOT")
    candidates = [(Path(root) / "include", Path(root) / "lib")] if root else []
    candidates += [(Path(sys.prefix) / "include", Path(sys.prefix) / "lib"),
                  (Path("/usr/include"), Path("/usr/lib") / multiarch),
                  (Path("/usr/local/include"), Path("/usr/local/lib"))]
    for inc, lib in candidates:
        if (inc / "oneapi" / "dnnl" / "dnnl.hpp").is_file() and (lib / "libdnnl.so").exists():
            return inc, lib
    return None


def threading_runtime(include: Path) -> str:
    """oneDNN's CPU threading runtime ('omp', 'tbb', ...) from its dnnl_config.h."""
    text = (include / "oneapi" / "dnnl" / "dnnl_config.h").read_text()
    for line in text.splitlines():
        if line.startswith("#define DNNL_CPU_THREADING_RUNTIME"):
            return _RUNTIMES.get(line.split()[-1], "unknown")
    return "unknown"


def compile_command(include: Path, lib: Path, runtime: str, out: Path) -> list[str]:
    """The g++ command line that builds the shared library at `out`."""
    import jax.ffi  # JAX only for its FFI headers, when compiling (see ops/__init__.py)

    cmd = ["g++", "-O2", "-std=c++17", "-shared", "-fPIC", str(SOURCE), "-o", str(out),
           f"-I{jax.ffi.include_dir()}", f"-I{include}", f"-L{lib}", "-ldnnl",
           # DT_RPATH (not RUNPATH) so libdnnl's own dependencies in the same folder
           # (TBB, SYCL runtime of the Intel wheels) are found too.
           "-Wl,--disable-new-dtags", f"-Wl,-rpath,{lib}"]
    if runtime == "omp":
        cmd.append("-fopenmp")  # the handlers set OpenMP's thread count per call
    return cmd


def _fingerprint(cmd: list[str], lib: Path) -> str:
    dnnl = (lib / "libdnnl.so").resolve()
    stat = dnnl.stat()
    h = hashlib.sha256(SOURCE.read_bytes())
    h.update(json.dumps([cmd, str(dnnl), stat.st_size, stat.st_mtime_ns]).encode())
    return h.hexdigest()


def build(force: bool = False) -> tuple[bool, str]:
    """Builds the library when needed; returns (ok, one-line message)."""
    if sys.platform != "linux":
        return False, f"oneDNN conv not built: only Linux is supported (this is {sys.platform})"
    if shutil.which("g++") is None:
        return False, "oneDNN conv not built: g++ not found (apt-get install g++)"
    found = find_onednn()
    if found is None:
        return False, ("oneDNN conv not built: oneDNN headers/library not found "
                       "(pip install -r requirements.txt: onednn-cpu-gomp, onednn-devel-cpu-gomp)")
    include, lib = found
    runtime = threading_runtime(include)
    BUILD_DIR.mkdir(exist_ok=True)
    (BUILD_DIR / ".gitignore").write_text("*\n")
    tmp = LIBRARY.with_suffix(f".tmp{os.getpid()}.so")
    cmd = compile_command(include, lib, runtime, tmp)
    fingerprint = _fingerprint(cmd[:7] + cmd[8:], lib)  # without the temporary name
    if not force and LIBRARY.exists() and INFO.exists():
        try:
            if json.loads(INFO.read_text()).get("fingerprint") == fingerprint:
                return True, f"oneDNN conv up to date: {LIBRARY}"
        except (OSError, ValueError):
            pass
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr[:200])
        return False, f"oneDNN conv not built: g++ failed: {first.strip()}"
    os.replace(tmp, LIBRARY)  # atomic, so a running process never sees half a library
    INFO.write_text(json.dumps({"fingerprint": fingerprint, "library": str(LIBRARY),
                                "onednn_lib": str(lib), "runtime": runtime}, indent=1))
    return True, f"oneDNN conv built ({runtime} runtime, {lib}): {LIBRARY}"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; prints one line and returns 0 whether or not it could build."""
    argv = sys.argv[1:] if argv is None else argv
    _, message = build(force="--force" in argv)
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
