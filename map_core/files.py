"""File helpers: output paths checked before any work, atomic writes (a reader never sees a
half-written output), outputs of several files written all or none, checksums, free memory."""

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
    path = check_output_path(path, "file")  # one line, not a traceback, for a folder or a file in the way
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


OUTPUT_KINDS = ("file", "folder")
# room a name needs beyond its own length for the names written beside it: atomic_path's
# ".STEM.XXXXXXXX.tmp" and staged_outputs' folder, a resumable job's ".partial"
NAME_MARGIN = 24


def check_output_path(path, kind: str = "file") -> Path:
    """`path` as a Path if an output of `kind` ("file" or "folder") can be written there, else
    MapSuiteError naming it. Every command calls this on its outputs before any work.

    Refused: an empty name; a file output naming an existing folder (or ending in a slash) or
    something that is not a regular file (a device, a pipe); a folder output naming a file; a
    path below a file; a name too long for the file system; and a folder the user cannot write
    into (the output's own folder, or else the nearest one that exists and would hold it).
    """
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"kind must be one of {OUTPUT_KINDS}, got {kind!r}")
    text = os.fspath(path)
    if not text.strip():
        raise MapSuiteError(f"empty output {kind} name", repr(text))
    if "\0" in text:
        raise MapSuiteError(f"the output {kind} name holds a NUL character", repr(text))
    out = Path(text)
    limit = _name_max(_nearest_existing(out.parent))
    names = [len(os.fsencode(part)) for part in out.parts] or [0]  # "." has no parts
    if names[-1] + NAME_MARGIN > limit or max(names) > limit:  # before any stat, which would fail on it
        raise MapSuiteError(f"a name in the path is too long for the file system (at most {limit - NAME_MARGIN} bytes)", path)
    if kind == "file":  # os.path's tests, unlike pathlib's, say False for any path the system refuses
        if text.endswith(os.sep) or out.name in ("", ".", ".."):
            raise MapSuiteError("names a folder; the output is a file", path)
        if os.path.isdir(out):
            raise MapSuiteError("is an existing folder; the output is a file", path)
        if os.path.lexists(out) and not os.path.isfile(out):
            raise MapSuiteError("exists and is not a regular file; the output is a file", path)
    elif os.path.lexists(out) and not os.path.isdir(out):
        raise MapSuiteError("is an existing file; the output is a folder", path)
    folder = _nearest_existing(out if kind == "folder" else out.parent)  # the folder that holds it, or would
    if not os.path.isdir(folder):
        raise MapSuiteError(f"cannot be created: {folder} is not a folder", path)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MapSuiteError(f"cannot be written: no permission to write in {folder}", path)
    return out


def _nearest_existing(path) -> Path:
    """`path` made absolute, or else its nearest ancestor that exists (a file or a folder)."""
    path = Path(os.path.abspath(path))
    while not os.path.lexists(path):
        path = path.parent
    return path


def _name_max(folder: Path) -> int:
    """The longest file name, in bytes, that the file system of `folder` takes (255 where it does not say)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


@contextlib.contextmanager
def staged_outputs(folder):
    """All files or none: yield `stage(target) -> temporary path`; every staged file is written into
    one temporary folder inside `folder` (the targets' folder) and moved onto its target only when
    the block succeeds. On any failure, of the block or of a move, nothing new is left: files
    already moved are taken back and the targets they replaced restored.
    """
    folder = Path(folder)
    made = _outermost_missing(folder)  # removed again if nothing is written
    folder.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".staged-", suffix=".tmp", dir=folder))
    staged = {}  # target -> temporary path, in the order staged

    def stage(target) -> Path:
        target = check_output_path(target, "file")  # never a folder: a move would take it away
        if target in staged:
            raise ValueError(f"{target} is staged twice")
        staged[target] = scratch / f"{len(staged):04d}{''.join(target.suffixes)}"
        return staged[target]

    umask = os.umask(0)
    os.umask(umask)
    try:
        yield stage
        _move_all(staged, scratch, umask)
    except BaseException as exc:
        shutil.rmtree(made or scratch, ignore_errors=True)
        full = None if isinstance(exc, MapSuiteError) else _no_space(exc, folder)
        if full:  # as atomic_path: a full disk in the library's own words becomes one line
            raise MapSuiteError(f"not written: {full}; earlier files are unchanged", next(iter(staged), folder)) from None
        raise
    shutil.rmtree(scratch, ignore_errors=True)


def _move_all(staged: dict, scratch: Path, umask: int) -> None:
    """Move each staged file onto its target; on a failure undo the moves made (old targets back)."""
    for tmp in staged.values():
        if not tmp.is_file():
            raise RuntimeError(f"staged output {tmp} was never written")
        os.chmod(tmp, 0o666 & ~umask)  # the usual permissions of a new file
    moved = []  # (target, its earlier version kept in scratch or None)
    try:
        for k, (target, tmp) in enumerate(staged.items()):
            backup = None
            if os.path.isdir(target):  # appeared since it was staged: a folder is never moved aside
                raise MapSuiteError("is an existing folder; the output is a file", target)
            if os.path.lexists(target):
                backup = scratch / f"old-{k:04d}"
                os.replace(target, backup)
            moved.append((target, backup))
            os.replace(tmp, target)
    except BaseException:
        for target, backup in reversed(moved):
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, target)
                elif os.path.lexists(target):
                    os.unlink(target)
        raise


@contextlib.contextmanager
def partial_folder(out, keep: str | None = None):
    """Yield (`out`.partial/, created): the folder where a resumable job writing `out` keeps its
    finished pieces, made here if missing (created: True) and removed when the block succeeds.

    A failure of the block (an error, a refusal) removes a folder this run made, and the folders
    made to hold it, unless it holds finished work matching the glob `keep`, which a rerun resumes
    from; a folder found from an earlier run stays as it was. Ctrl-C (KeyboardInterrupt) and a
    kill keep it: the rerun resumes.
    """
    out = Path(out)
    folder = out.with_name(out.name + ".partial")
    made = _outermost_missing(folder)
    if made is not None:
        folder.mkdir(parents=True)
    try:
        yield folder, made is not None
    except Exception:
        if made is not None and not (keep and any(folder.glob(keep))):
            shutil.rmtree(made, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)


def _outermost_missing(folder: Path) -> Path | None:
    """The outermost folder that making `folder` (with its parents) would create; None if it exists."""
    if os.path.lexists(folder):
        return None
    made = Path(folder)
    while not os.path.lexists(made.parent):
        made = made.parent
    return made


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
