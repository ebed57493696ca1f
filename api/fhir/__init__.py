"""FHIR R4 views of the record: pure mappings to resource JSON, search parsing, bundles.

The mapping modules build plain JSON (dicts), import no I/O library and read no clock; the
adapter (`api.fhir_models`) validates every resource with `fhir.resources` (R4B models)
before it is served.
"""
