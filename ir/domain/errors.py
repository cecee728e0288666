"""The errors a user can meet, each mapped once to an HTTP status and an exit code (DESIGN.md)."""

from __future__ import annotations


class IrError(Exception):
    """A mistake or a refusal explained in one clear line."""

    exit_code = 1
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        # rebuilt as it is, whatever the subclass's __init__ asks for (ir serve sends refusals between
        # its processes): pickle's default would call __init__ with the message alone
        return _rebuilt, (type(self), self.args, self.__dict__)


def _rebuilt(cls: type[IrError], args: tuple[object, ...], state: dict[str, object]) -> IrError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InvalidInput(IrError):
    exit_code = 2
    http_status = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(IrError):
    exit_code = 3
    http_status = 404


class InvalidTransition(IrError):
    exit_code = 4
    http_status = 409


class Conflict(InvalidTransition):
    """Someone else changed the same thing first (optimistic concurrency)."""


class NotPermitted(IrError):
    exit_code = 5
    http_status = 403


class NotAuthenticated(IrError):
    exit_code = 6
    http_status = 401


class NotMigrated(IrError):
    exit_code = 7
    http_status = 503
