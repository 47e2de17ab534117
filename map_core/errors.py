"""The one exception type that user-facing code turns into a one-line error and exit code 2."""


class MapSuiteError(Exception):
    """Bad input or a failed run; the message names the file (if any) and the problem."""

    def __init__(self, message: str, path=None):
        self.path = None if path is None else str(path)
        message = " ".join(str(message).split("\n"))  # one line, whatever a library's message held
        super().__init__(f"{self.path}: {message}" if self.path else message)
