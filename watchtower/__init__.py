"""watchtower: monitoring, compliance and remediation for fediverse hosting fleets on NixOS."""

from watchtower import quiet

__version__ = "0.1.0"

quiet.install()
