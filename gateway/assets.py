"""The files of gateway/static/ that the gateway serves: the snippet, the OpenAPI
document and the status page, kept as files so that their own tools read them."""

from __future__ import annotations

from importlib import resources


def static_file(name: str) -> bytes:
    """gateway/static/<name>, read from the installed package (FileNotFoundError if absent)."""
    return resources.files("gateway").joinpath(f"static/{name}").read_bytes()
