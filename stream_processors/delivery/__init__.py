"""Delivery sinks: what sends a finished task out of the pipeline (today, its webhook).

``deliveries`` (the delivery record and its retry schedule), ``payload`` (the
signed body), ``targets`` (the SSRF guard) and ``http`` (one attempt) are plain
modules. ``dispatch`` registers the delivery timer on the Faust app, so, like
the agents, only ``stream_processors.main`` imports it for that; this package
imports none of its modules.
"""
