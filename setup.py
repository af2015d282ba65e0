"""The compiled modules (setup.cfg holds everything else): the probe engine (TCP, HTTP and
HTTPS checks, linked with the system's OpenSSL) and the Maglev fill's hot loops.

See maglev/health/probes/_connect.c and maglev/_lbfill.c for why.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "maglev.health.probes._connect",
            ["maglev/health/probes/_connect.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
            libraries=["ssl", "crypto"],  # HTTPS checks: the system's OpenSSL (libssl-dev to build)
        ),
        Extension("maglev._lbfill", ["maglev/_lbfill.c"], extra_compile_args=["-O2", "-Wall", "-Wextra"]),
    ]
)
