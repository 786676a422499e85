"""watchtower: monitoring, compliance and remediation for fediverse hosting fleets on NixOS."""

__version__ = "0.1.0"
