"""The one exception type services raise; the API maps it to {"error": {code, message, details}}."""


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
