"""The one exception type services raise for problems a user can fix; views and commands render it."""


class ApplicationError(Exception):
    """`status_code` is the HTTP status pages and the API answer with: 400 unless a subclass says otherwise
    (409 for a conflict with what the user saw, 429 for a rate limit). `extra` carries fields for the API."""

    status_code = 400

    def __init__(self, message: str, *, details: list[str] | None = None, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.extra = extra or {}

    def __str__(self) -> str:
        if not self.details:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {d}" for d in self.details)


class Conflict(ApplicationError):
    """The request was made against a state that has moved on (say, a phrasing edited since it was read)."""

    status_code = 409


class RateLimited(ApplicationError):
    """Too many actions in a rolling window. `retry_after` is the number of seconds until the next one will be
    accepted; pages and the API answer 429 with it in a Retry-After header."""

    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, extra={"retry_after": retry_after})
        self.retry_after = retry_after


def response_headers(exc: ApplicationError) -> dict[str, str]:
    """The HTTP headers that go with an ApplicationError's answer, on pages and in the API alike."""
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(exc.retry_after)}
    return {}
