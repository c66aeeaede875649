"""The error that the command line reports as one line instead of a traceback."""


class UserInputError(ValueError):
    """Input the user can fix: a bad path, file, config value or argument.

    The message must say what is wrong and what to do about it.
    """
