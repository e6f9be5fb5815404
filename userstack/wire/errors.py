"""The one exception that parsing raises."""


class WireError(ValueError):
    """Bytes that are not a well-formed packet: the caller drops and counts them."""
