"""The one exception type that user-facing code turns into a one-line error and exit code 2, and
`run_one_line`, which runs a command so that the terminal sees that one line and nothing of a
library's warnings before it."""

import contextlib
import logging
import sys
import warnings


class MapSuiteError(Exception):
    """Bad input or a failed run; the message names the file (if any) and the problem."""

    def __init__(self, message: str, path=None):
        self.path = None if path is None else str(path)
        message = " ".join(str(message).split("\n"))  # one line, whatever a library's message held
        super().__init__(f"{self.path}: {message}" if self.path else message)


NOTE_CHARS = 300  # a library's note is cut to this many characters
SUMMARY_CHARS = 160  # and to this many where it ends an error line


def run_one_line(prog: str, work, interrupted: str = "finished work is kept, rerun to resume") -> int:
    """Run `work()` (returns an exit code or None) as a command-line tool: a MapSuiteError becomes
    one line on stderr and exit code 2, Ctrl-C one line and exit code 130.

    Library warnings (Python warnings of numpy, mdtraj, OpenMM, ..., and WARNING records of the
    logging module) are captured while `work` runs, never printed in their own multi-line form:
    an error line ends with a short "(library warning: ...)"; after work that ends without an
    error, each distinct one is one line, "PROG: note: ...". Filters already in force still apply
    (an ignored warning stays ignored, ``-W error`` still raises).
    """
    notes = []
    with _library_warnings(notes):
        try:
            code = int(work() or 0)
        except MapSuiteError as exc:
            print(f"{prog}: error: {exc}{_summary(notes)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"{prog}: interrupted; {interrupted}{_summary(notes)}", file=sys.stderr)
            return 130
        except BaseException as exc:  # a bug's traceback keeps the warnings that came before it
            for note in notes:
                exc.add_note(f"library warning: {note}")
            raise
    for note in notes:
        print(f"{prog}: note: {note}", file=sys.stderr)
    return code


class _Notes(logging.Handler):
    """A logging handler that adds each WARNING (or worse) record to a list of notes."""

    def __init__(self, add):
        super().__init__(logging.WARNING)
        self.add = add

    def emit(self, record):
        self.add(f"{record.levelname.lower()} of {record.name}: {record.getMessage()}")


@contextlib.contextmanager
def _library_warnings(notes: list):
    """Collect, in `notes`, the distinct warnings and WARNING log records (one line each) of the block."""
    seen = set()

    def add(text: str) -> None:
        text = " ".join(str(text).split())
        text = text if len(text) <= NOTE_CHARS else text[:NOTE_CHARS - 3] + "..."
        if text not in seen:
            seen.add(text)
            notes.append(text)

    def show(message, category, filename, lineno, file=None, line=None):
        add(f"{category.__name__}: {message} ({_module(filename)})")

    handler = _Notes(add)
    root = logging.getLogger()
    root.addHandler(handler)  # the root has a handler now, so logging's last resort prints nothing
    try:
        with warnings.catch_warnings():  # restores showwarning (and the filters) on the way out
            warnings.showwarning = show
            yield
    finally:
        root.removeHandler(handler)


def _module(filename: str) -> str:
    """A short name of the source of a warning: its package folder and file, not a full path."""
    parts = str(filename).replace("\\", "/").split("/")
    return "/".join(parts[-2:])


def _summary(notes: list) -> str:
    """' (library warning: FIRST; N more)' to end an error line, or '' without warnings."""
    if not notes:
        return ""
    first = notes[0] if len(notes[0]) <= SUMMARY_CHARS else notes[0][:SUMMARY_CHARS - 3] + "..."
    more = f"; {len(notes) - 1} more" if len(notes) > 1 else ""
    return f" (library warning: {first}{more})"
