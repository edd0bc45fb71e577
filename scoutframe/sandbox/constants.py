"""Names that the server, the control plane's routes and its client share.

They live here, below all three, so none has to import another for a constant.
"""

from __future__ import annotations

__all__ = ["ADMIN_HEADER", "DEMO_EMAIL"]

#: The demo account's login, created at first start.
DEMO_EMAIL = "demo@sandbox.spherescout.test"
#: The header carrying the control plane's token on every ``/_sandbox/`` request.
ADMIN_HEADER = "X-Sandbox-Admin-Token"
