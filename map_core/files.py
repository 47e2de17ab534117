"""File helpers: atomic writes (a reader never sees a half-written output), checksums, free memory."""

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from map_core.errors import MapSuiteError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The temporary name keeps the suffix of `path` (numpy and torch look at suffixes).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; outputs get the usual permissions
        os.replace(tmp, path)
    except MapSuiteError:
        raise
    except Exception as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        full = _no_space(exc, path.parent)
        if full:  # torch and numpy report a full disk in their own words, or as OSError(ENOSPC)
            raise MapSuiteError(f"not written: {full}; earlier files are unchanged", path) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _no_space(exc: BaseException, folder: Path) -> str | None:
    """A description if `exc` came from a full disk or a file-size limit, else None."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return os.strerror(exc.errno)
    try:
        free = free_disk_bytes(folder)
    except OSError:
        return None
    return f"no space left on the device ({free} bytes free)" if free < (1 << 20) else None


def free_disk_bytes(path) -> int:
    """Free bytes on the file system that holds `path`, or would hold it (its nearest existing folder)."""
    folder = Path(path).resolve()
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def write_text_atomic(path, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


INSTALL_ROOT = Path(__file__).resolve().parents[1]  # the folder holding map_core/ and validation/


def shown_path(path) -> str:
    """`path` as written into reports and results: relative to the working directory, or else to the
    installation (shipped files: map_core/data/..., validation/gate/profiles/...), when it lies inside
    one of them, so that a committed report names no one's home folder; otherwise as given."""
    full = Path(path).resolve()
    for root in (Path.cwd().resolve(), INSTALL_ROOT):
        if full.is_relative_to(root):
            return full.relative_to(root).as_posix()
    return str(path)


def find_shown(path) -> Path:
    """The file a `shown_path` names: the path as written if it exists from here, else the same
    relative path inside the installation (a shipped file named by a committed report)."""
    given = Path(path)
    if given.exists() or given.is_absolute():
        return given
    installed = INSTALL_ROOT / given
    return installed if installed.exists() else given


def sha256_file(path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(Path(path), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def available_memory_bytes() -> int | None:
    """MemAvailable of /proc/meminfo, bytes; None where the system does not say."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None
