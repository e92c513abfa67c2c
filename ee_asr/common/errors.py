"""Errors that a user can act on: the message names the file, line or utterance."""


class UserError(Exception):
    """Bad input or configuration; the CLI prints the message without a traceback."""


class DataError(UserError):
    def __init__(self, path, message, line=None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
