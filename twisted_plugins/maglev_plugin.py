"""twistd/twist plugin: ``twistd -n maglev`` and ``twist maglev``.

Installed as the ``twisted.plugins`` package (setup.cfg package_dir), the only
place twistd looks. Kept tiny: ServiceMaker imports maglev.tap only when used.
"""

from twisted.application.service import ServiceMaker

maglev = ServiceMaker(
    "vpp-maglev",
    "maglev.tap",
    "Health checks and VPP lb (Maglev) control plane",
    "maglev",
)

maglev_frontend = ServiceMaker(
    "vpp-maglev web frontend",
    "maglev.web.frontend",
    "The maglev web UI for one or more remote maglevds (gRPC)",
    "maglev-frontend",
)
