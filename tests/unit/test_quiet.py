"""The known third-party warning is filtered by its exact category, module and message, and
nothing else is (watchtower/quiet.py)."""

from __future__ import annotations

import subprocess
import sys
import warnings

from cryptography.utils import CryptographyDeprecationWarning

from watchtower import quiet

DSA = "DSA is deprecated and support will be removed in a future release."


def _shown(message: str, category: type[Warning], module: str) -> bool:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet.install()
        # what dnspython's class bodies do under cryptography >= 51 (warn_explicit: the
        # module is given, as warnings.warn derives it from the caller's globals)
        warnings.warn_explicit(message, category, "dsa.py", 13, module=module)
    return bool(seen)


def test_dnspython_dsa_warning_is_filtered() -> None:
    assert not _shown(DSA, CryptographyDeprecationWarning, "dns.dnssecalgs.dsa")


def test_other_warnings_still_show() -> None:
    # the same warning from anywhere else (our own code touching DSA) is not hidden
    assert _shown(DSA, CryptographyDeprecationWarning, "watchtower.net.tls")
    assert _shown(DSA, CryptographyDeprecationWarning, "dns.dnssecalgs.dsa_other")
    # another cryptography deprecation from the same module is not hidden
    assert _shown("TripleDES has been moved", CryptographyDeprecationWarning,
                  "dns.dnssecalgs.dsa")
    # the same text in another category is not hidden
    assert _shown(DSA, DeprecationWarning, "dns.dnssecalgs.dsa")


def test_importing_watchtower_installs_them() -> None:
    """In a fresh interpreter (pytest keeps its own filters per test): importing watchtower,
    as the CLI, the dashboard and the sweep workers do, is enough."""
    code = ("import warnings, watchtower\n"
            "from cryptography.utils import CryptographyDeprecationWarning as W\n"
            f"warnings.warn_explicit({DSA!r}, W, 'dsa.py', 13, module='dns.dnssecalgs.dsa')\n"
            f"warnings.warn_explicit({DSA!r}, W, 'x.py', 1, module='elsewhere')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stderr.count("DSA is deprecated") == 1
    assert "x.py:1" in proc.stderr
