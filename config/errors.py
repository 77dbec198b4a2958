"""The one exception type services raise; the API maps it to {"error": {code, message, details}}."""

from django.db import InterfaceError, OperationalError

# SQLSTATEs of a server that is going away or not there yet (class 08: connection exceptions).
_UNREACHABLE_SQLSTATES = ("57P01", "57P02", "57P03")


class ChameleonError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, details=None):
        super().__init__(message)
        self.message = message
        self.details = details if details is not None else {}
        if code:
            self.code = code


class InvalidInput(ChameleonError):
    status = 400
    code = "invalid"


class NotFound(ChameleonError):
    status = 404
    code = "not_found"


class Conflict(ChameleonError):
    status = 409
    code = "conflict"


def database_unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached now (restarting, failing over), as
    opposed to a query that failed (a deadlock or a timeout is not this)."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _UNREACHABLE_SQLSTATES


def error_lines(exc: ChameleonError) -> list[str]:
    """One line per problem; a spec error's lines name its path (`steps[1].needs[0]: ...`)."""
    lines = [] if exc.code == "invalid_spec" else [exc.message]
    details = exc.details if isinstance(exc.details, dict) else {}
    for path, messages in details.items():
        for message in messages if isinstance(messages, list) else [messages]:
            lines.append(f"{path}: {message}")
    return lines or [exc.message]
