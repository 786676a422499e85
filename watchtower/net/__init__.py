"""The only way out of the process: DNS, HTTP, TLS and (later) SMTP, S3 and command transports.

Every check reaches the network through these modules, so timeouts, size caps, the configured
resolver and CA bundle, and the per-sweep cache are enforced in one place.
"""
