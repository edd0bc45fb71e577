"""Endpoint groups of the API, each bound to a :class:`~scoutframe.api.client.Client`."""
