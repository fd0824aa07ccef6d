"""Errors a user can cause. The CLI prints their message as one sentence and exits with code 2."""


class UserError(Exception):
    """Base for problems the user can fix: a bad path, argument or input file."""


class InputPathError(UserError):
    """An input path does not exist or cannot be read."""


class PipelineError(UserError):
    """A stage's required input (a table or a fitted pipeline) is missing or incompatible."""
