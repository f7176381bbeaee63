"""The errors of handling that callers (pages, the API, playbooks) turn into messages."""


class HandlingError(Exception):
    """A handling request that cannot be applied; ``field`` names what is wrong."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message
