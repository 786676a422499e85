"""The one place third-party warnings the operator cannot act on are filtered, each by its exact
category, module and message, so every other warning still shows.

- dnspython's `dns.dnssecalgs.dsa` names `cryptography`'s DSA key classes in its class bodies;
  from cryptography 51 on, each access warns (`CryptographyDeprecationWarning`, "DSA is
  deprecated ..."), so importing dnspython's DNSSEC support printed eight lines before every
  command. Nothing is lost: DSA still works where it is used, and a zone signed with it
  (DNSSEC algorithms 3 and 6) fails dns.dnssec anyway (`checks/dns/chain.py`,
  FORBIDDEN_ALGORITHMS, from the algorithm number). With cryptography < 51 nothing warns there
  and the filter is inert.

`watchtower/__init__.py` installs the filters, so the CLI, the dashboard (Streamlit imports
watchtower.dashboards) and the sweep worker processes all get them.
"""

from __future__ import annotations

import warnings

#: (message regex, category's module, category's name, warning's module regex)
KNOWN: tuple[tuple[str, str, str, str], ...] = (
    (r"DSA is deprecated", "cryptography.utils", "CryptographyDeprecationWarning",
     r"dns\.dnssecalgs\.dsa\Z"),
)


def install() -> None:
    """Ignore each known warning, and only it (by message, category and module)."""
    import importlib

    for message, category_module, category_name, module in KNOWN:
        try:
            category = getattr(importlib.import_module(category_module), category_name)
        except (ImportError, AttributeError):  # the library changed: its warning is gone too
            continue
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
