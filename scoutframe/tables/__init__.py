"""The contacts table wing: the schema, conversions, the export CSV, Parquet, Excel, datasets.

Everything here works on Arrow tables and pandas frames of contacts, with no network: it never
imports :mod:`scoutframe.api`. Import the modules themselves (``scoutframe.tables.schema``);
this package re-exports nothing, so importing it costs nothing.
"""
