"""fedi.* checks (per ActivityPub service: Mastodon, PeerTube, Pixelfed).

Discovery runs the way a remote server runs it: WebFinger on the *account* domain (which may
differ from the web domain: Mastodon's LOCAL_DOMAIN != WEB_DOMAIN redirects `.well-known` there),
then the actor the `self` link names. Each check repeats the few requests it needs instead of
sharing state, so any one of them can run, fail or be disabled alone.

The checks live by concern: `discovery` (WebFinger, host-meta, the shared base), `nodeinfo_check`,
`actor` (the actor document and authorized fetch) and `health`.
"""

from .actor import Actor, AuthorizedFetch
from .discovery import FediCheck, HostMeta, WebFinger
from .health import Health
from .nodeinfo_check import NodeInfo

__all__ = ["Actor", "AuthorizedFetch", "FediCheck", "Health", "HostMeta", "NodeInfo", "WebFinger"]
