"""vpp-maglev: health checking and VPP lb (Maglev) control plane on Twisted."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/vpp-maglev/vpp-maglev"
