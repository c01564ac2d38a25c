"""The user-facing error types shared across layers (a cross-cutting module: imports nothing).

    ConfigError(flag, message)   an invalid or inconsistent training option; str() is
                                 "--flag: message". Raised by `glow_tf.runs.config` and the
                                 trainer; train.py prints it and exits with status 2.
    InputError(message)          a bad input to the tools (a file, model, latents, attribute,
                                 shape); the message names it. sample.py, manipulate.py and the
                                 editor print it and exit with status 2 (the editor: HTTP 400).

Both are ValueErrors, so library callers that catch ValueError keep working. Data problems have
their own type, `glow_tf.data.DataError`.
"""


class ConfigError(ValueError):
    """An invalid or inconsistent option.

    Args:
        flag: the command-line flag to blame, e.g. '--lr' (or a file path for a bad file).
        message: what is wrong and what was expected.
    """

    def __init__(self, flag, message):
        self.flag = flag
        super().__init__(f"{flag}: {message}")


class InputError(ValueError):
    """A user-facing problem with an input (file, model, latents, attribute...); the message
    names what is wrong. The command-line tools print it and exit with status 2."""
