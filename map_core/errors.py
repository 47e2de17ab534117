"""The one exception type that user-facing code turns into a one-line error and exit code 2."""

import sys


class MapSuiteError(Exception):
    """Bad input or a failed run; the message names the file (if any) and the problem."""

    def __init__(self, message: str, path=None):
        self.path = None if path is None else str(path)
        message = " ".join(str(message).split("\n"))  # one line, whatever a library's message held
        super().__init__(f"{self.path}: {message}" if self.path else message)


def run_one_line(prog: str, work, interrupted: str = "finished work is kept, rerun to resume") -> int:
    """Run `work()` (returns an exit code or None) as a command-line tool: a MapSuiteError becomes
    one line on stderr and exit code 2, Ctrl-C one line and exit code 130."""
    try:
        return int(work() or 0)
    except MapSuiteError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; {interrupted}", file=sys.stderr)
        return 130
