"""The REST API client wing: configuration, credentials, the wire, endpoints, export jobs.

Everything that speaks to SphereScout (or the sandbox) over HTTP lives here; it never imports
:mod:`scoutframe.tables` (the contacts table), and the two meet only in :mod:`scoutframe.read`
and :mod:`scoutframe.cache`. Import the modules themselves (``scoutframe.api.client``); this
package re-exports nothing, so importing it costs nothing.
"""
