"""The user-facing error types shared across layers (a cross-cutting module: imports nothing).

    ConfigError(flag, message)   an invalid or inconsistent training option; str() is
                                 "--flag: message". Raised by `glow_tf.runs.config` and the
                                 trainer; train.py prints it and exits with status 2.
    InputError(message)          a bad input to the tools (a file, model, latents, attribute,
                                 shape); the message names it. sample.py, manipulate.py and the
                                 editor print it and exit with status 2 (the editor: HTTP 400).

    ArgumentError(argument, message)
                                 an invalid argument of the model or one of its layers,
                                 naming the `Glow` argument (e.g. 'depth'); `runs.config` turns
                                 it into a ConfigError naming the flag behind that argument.

All are ValueErrors, so library callers that catch ValueError keep working. Data problems have
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


class ArgumentError(ValueError):
    """An invalid argument of `glow_tf.Glow` or one of its layers; str() is the message alone.

    Args:
        argument: the `Glow` argument it concerns (e.g. 'depth', 'flow_coupling', 'image_shape').
        message: what is wrong and what was expected (names the argument too).
    """

    def __init__(self, argument, message):
        self.argument = argument
        super().__init__(message)
