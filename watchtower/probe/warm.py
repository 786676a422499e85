"""Imported only by the sweep workers' forkserver: loads and warms what every worker needs
(the checks, the Public Suffix List, sslyze, botocore's S3 model) once, so each worker forked
from it starts warm and shares those pages instead of holding its own copy."""

import gc
import importlib

from watchtower.net.s3 import warm_s3_models
from watchtower.parsers.domains import organizational_domain
from watchtower.probe import registry, workers  # noqa: F401 - the worker's code, imported

registry.checks()
organizational_domain("example.org")
# Loaded here, shared: every worker would otherwise load them on its first TLS scan and first
# S3 check, each its own copy (sslyze and nassl's two OpenSSL builds; the S3 service model
# and endpoint rules, parsed from botocore's JSON by the process's one botocore session).
importlib.import_module("watchtower.net._sslyze_steps")
warm_s3_models()

# Everything loaded so far lives as long as the worker: out of the collector's sight, a full
# collection in a worker no longer writes to (and so copies) every page of it that the
# workers share with this forkserver.
gc.freeze()
